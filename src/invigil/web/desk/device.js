// Device checks: camera, microphone, test recording, network, battery, browser, monitors.

import { pickMime } from "../shared/recorder.js";

export const VIRTUAL_CAMERA = /(obs|manycam|snap camera|xsplit|e2esoft|vcam|virtual|droidcam|camtwist)/i;

export async function listDevices() {
  const all = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: all.filter((d) => d.kind === "videoinput"),
    mics: all.filter((d) => d.kind === "audioinput"),
  };
}

/** Camera + microphone in one stream (what the webcam recording records). */
export function openCamera({ cameraId, micId } = {}) {
  return navigator.mediaDevices.getUserMedia({
    video: {
      deviceId: cameraId ? { exact: cameraId } : undefined,
      width: { ideal: 640 },
      height: { ideal: 480 },
      frameRate: { ideal: 15, max: 30 },
    },
    audio: {
      deviceId: micId ? { exact: micId } : undefined,
      echoCancellation: true,
      noiseSuppression: true,
    },
  });
}

/** A microphone level meter: calls onLevel(0..1) about ten times a second. */
export class LevelMeter {
  constructor(stream, onLevel) {
    this.onLevel = onLevel;
    this.level = 0;
    this.peak = 0;
    const track = stream.getAudioTracks()[0];
    if (!track) return;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    this.ctx = new Ctx();
    const source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    source.connect(this.analyser);
    this.buf = new Float32Array(this.analyser.fftSize);
    this.timer = setInterval(() => this._tick(), 100);
    if (this.ctx.state === "suspended") {
      // Autoplay rules may hold the context until the candidate clicks somewhere.
      this.ctx.resume().catch(() => {});
      this._resume = () => this.ctx && this.ctx.state === "suspended" && this.ctx.resume().catch(() => {});
      document.addEventListener("pointerdown", this._resume, true);
      document.addEventListener("keydown", this._resume, true);
    }
  }
  _tick() {
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    const rms = Math.sqrt(sum / this.buf.length);
    this.level = Math.min(1, rms * 4);
    this.peak = Math.max(this.peak, this.level);
    this.onLevel(this.level);
  }
  stop() {
    clearInterval(this.timer);
    if (this._resume) {
      document.removeEventListener("pointerdown", this._resume, true);
      document.removeEventListener("keydown", this._resume, true);
    }
    if (this.ctx) this.ctx.close().catch(() => {});
  }
}

/** Record `seconds` of the stream and return a blob URL to play it back. */
export function testRecording(stream, seconds = 5) {
  return new Promise((resolve, reject) => {
    const mime = pickMime(stream);
    const rec = new MediaRecorder(stream, mime ? { mimeType: mime } : {});
    const parts = [];
    rec.ondataavailable = (e) => e.data.size && parts.push(e.data);
    rec.onstop = () => {
      const blob = new Blob(parts, { type: rec.mimeType || "video/webm" });
      resolve({ url: URL.createObjectURL(blob), size: blob.size, mime: blob.type });
    };
    rec.onerror = (e) => reject(e.error || e);
    // Timed from the recorder's start, not from the call: the first frame comes a moment
    // later, and a "5 s" recording must play back as five seconds.
    rec.onstart = () => setTimeout(() => rec.state !== "inactive" && rec.stop(), seconds * 1000);
    rec.start(1000);
  });
}

/**
 * Upload speed: POST ~384 KB to /api/v1/candidate/speedtest when the server has it; otherwise
 * only the round trip of GET /api/v1/time can be measured, and the result says so.
 */
export async function speedTest() {
  const size = 384 * 1024;
  const body = new Uint8Array(size);
  crypto.getRandomValues(body.subarray(0, 65536));
  try {
    const t0 = performance.now();
    const r = await fetch("/api/v1/candidate/speedtest", { method: "POST", body, cache: "no-store" });
    const t1 = performance.now();
    if (r.ok) {
      const kbps = Math.round((size * 8) / ((t1 - t0) / 1000) / 1000);
      return { kind: "upload", kbps, ms: Math.round(t1 - t0) };
    }
  } catch {
    return { kind: "offline" };
  }
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    try {
      await fetch("/api/v1/time", { cache: "no-store" });
    } catch {
      return { kind: "offline" };
    }
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { kind: "latency", ms: Math.round(times[Math.floor(times.length / 2)]) };
}

export async function battery() {
  if (!navigator.getBattery) return null;
  try {
    const b = await navigator.getBattery();
    return { level: b.level, charging: b.charging };
  } catch {
    return null;
  }
}

export function browserCheck() {
  const problems = [];
  const md = navigator.mediaDevices;
  if (!window.isSecureContext) problems.push("insecure");
  if (!md || !md.getUserMedia) problems.push("camera_api");
  if (!md || !md.getDisplayMedia) problems.push("screen_api");
  if (typeof MediaRecorder === "undefined") problems.push("recorder");
  if (!window.indexedDB) problems.push("storage");
  if (!window.crypto || !crypto.subtle) problems.push("crypto");
  const ua = navigator.userAgent;
  const m = ua.match(/(?:Chrome|Chromium)\/(\d+)/);
  const edge = /Edg\//.test(ua);
  const chrome = !!m && !/OPR\//.test(ua);
  const version = m ? Number(m[1]) : 0;
  if (!chrome) problems.push("not_chrome");
  else if (version < 100) problems.push("old_chrome");
  return { ok: problems.length === 0, problems, name: edge ? "Edge" : chrome ? "Chrome" : "", version, mobile: /Mobi|Android/i.test(ua) };
}

export function secondScreen() {
  return typeof screen.isExtended === "boolean" ? screen.isExtended : null;
}
