// MediaRecorder around one stream, feeding the upload engine: 2 s chunks, each stored before
// it is sent. Shared by the desk (webcam, screen) and the phone (evidence).

export const TIMESLICE_MS = 2000;

const WITH_AUDIO = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm", "video/mp4;codecs=avc1,mp4a", "video/mp4"];
const VIDEO_ONLY = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm", "video/mp4;codecs=avc1", "video/mp4"];

export function pickMime(stream) {
  const list = stream.getAudioTracks().length ? WITH_AUDIO : VIDEO_ONLY;
  if (typeof MediaRecorder === "undefined") return null;
  return list.find((m) => MediaRecorder.isTypeSupported(m)) || "";
}

export class StreamRecorder {
  /**
   * @param {import('./upload.js').UploadEngine} engine
   * @param {string} kind webcam | screen | evidence
   * @param {MediaStream} stream
   * @param {{videoBitsPerSecond?:number, audioBitsPerSecond?:number, onStop?:(r:StreamRecorder)=>void, onError?:(e:any)=>void}} [opts]
   */
  constructor(engine, kind, stream, opts = {}) {
    this.engine = engine;
    this.kind = kind;
    this.stream = stream;
    this.opts = opts;
    this.localId = null;
    this.recorder = null;
    this.stopping = null;
    this.startedAt = null;
  }

  get active() {
    return !!this.recorder && this.recorder.state !== "inactive";
  }

  async start() {
    const mime = pickMime(this.stream);
    const options = {};
    if (mime) options.mimeType = mime;
    if (this.opts.videoBitsPerSecond) options.videoBitsPerSecond = this.opts.videoBitsPerSecond;
    if (this.opts.audioBitsPerSecond) options.audioBitsPerSecond = this.opts.audioBitsPerSecond;
    const recorder = new MediaRecorder(this.stream, options);
    this.localId = await this.engine.createRecording(this.kind, recorder.mimeType || mime || "video/webm");
    this.recorder = recorder;
    recorder.ondataavailable = (e) => {
      if (e.data && e.data.size) this.engine.addChunk(this.localId, e.data);
    };
    recorder.onerror = (e) => this.opts.onError && this.opts.onError(e.error || e);
    recorder.onstop = () => {
      // Stopped by us, or by the browser when every track ended (camera unplugged).
      this.engine.stopRecording(this.localId);
      if (!this.stopping && this.opts.onStop) this.opts.onStop(this);
    };
    recorder.start(TIMESLICE_MS);
    this.startedAt = Date.now();
    return this;
  }

  /** Stop; resolves when the last chunk is stored and the recording is marked complete. */
  stop() {
    if (this.stopping) return this.stopping;
    const recorder = this.recorder;
    this.stopping = new Promise((resolve) => {
      if (!recorder || recorder.state === "inactive") {
        if (this.localId) this.engine.stopRecording(this.localId).then(resolve, resolve);
        else resolve();
        return;
      }
      recorder.addEventListener("stop", () => {
        // ondataavailable of the last piece ran before stop; its store is on the chain.
        setTimeout(() => this.engine.stopRecording(this.localId).then(resolve, resolve), 0);
      });
      recorder.stop();
    });
    return this.stopping;
  }
}

// A frame this small is no picture: a track being torn down (the screen share ending at 交卷)
// can hand out a 2×2 black frame, which would show as a black tile and look like a covered camera.
const MIN_SIDE = 16;

function toJpeg(source, w, h, maxWidth, quality) {
  if (w < MIN_SIDE || h < MIN_SIDE) return Promise.resolve(null);
  const scale = Math.min(1, maxWidth / w);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob((b) => resolve(b), "image/jpeg", quality));
}

/** A JPEG of what a <video> element shows, at most maxWidth wide. Only for a video that is on
 * screen: Chrome pauses muted videos outside the viewport and draws them black. */
export function snapshotJpeg(video, maxWidth = 640, quality = 0.7) {
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h) return Promise.resolve(null);
  return toJpeg(video, w, h, maxWidth, quality);
}

const captures = new WeakMap();
const frameVideos = new WeakMap();

// Where ImageCapture is missing (Safari, Firefox): a video that stays inside the viewport, so
// the browser keeps decoding it. It is 2 px, transparent and ignores the pointer.
function frameVideo(track) {
  let v = frameVideos.get(track);
  if (!v) {
    v = document.createElement("video");
    v.muted = true;
    v.playsInline = true;
    v.autoplay = true;
    v.setAttribute("aria-hidden", "true");
    v.style.cssText = "position:fixed;right:0;bottom:0;width:2px;height:2px;opacity:0.01;pointer-events:none;z-index:-1";
    v.srcObject = new MediaStream([track]);
    document.body.append(v);
    track.addEventListener("ended", () => v.remove());
    frameVideos.set(track, v);
  }
  if (v.paused) v.play().catch(() => {});
  return v;
}

/**
 * A JPEG of the current frame of a live video track, whatever the page layout shows: the
 * frame comes from the track itself (ImageCapture.grabFrame), not from a <video> element that
 * may be hidden, paused or off-screen. Resolves to null when the track has no frame yet.
 */
export async function trackSnapshotJpeg(track, maxWidth = 640, quality = 0.7) {
  if (!track || track.readyState !== "live") return null;
  if (typeof ImageCapture === "function") {
    let capture = captures.get(track);
    if (!capture) {
      capture = new ImageCapture(track);
      captures.set(track, capture);
    }
    try {
      const bitmap = await capture.grabFrame();
      try {
        return await toJpeg(bitmap, bitmap.width, bitmap.height, maxWidth, quality);
      } finally {
        bitmap.close();
      }
    } catch {
      // A track that is muted or between frames: fall through to the video element.
    }
    if (track.readyState !== "live") return null;
  }
  const v = frameVideo(track);
  if (!v.videoWidth) {
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 1000);
      v.addEventListener("loadeddata", () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }
  return snapshotJpeg(v, maxWidth, quality);
}
