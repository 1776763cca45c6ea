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

/** A JPEG of what a <video> element shows, at most maxWidth wide. */
export function snapshotJpeg(video, maxWidth = 640, quality = 0.7) {
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h) return Promise.resolve(null);
  const scale = Math.min(1, maxWidth / w);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob((b) => resolve(b), "image/jpeg", quality));
}
