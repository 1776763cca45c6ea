// The exam's media: the entire-screen share, the webcam and screen recorders, device switches,
// integrity signals and the periodic snapshots.

import { backoffFor } from "../shared/backoff.js";
import { $ } from "../shared/dom.js";
import { StreamRecorder, trackSnapshotJpeg } from "../shared/recorder.js";
import { Signals } from "./signals.js";
import * as dev from "./device.js";
import { renderNet, show } from "./shell.js";
import { startAnswering } from "./stage-answer.js";
import { cameraError } from "./stage-device.js";
import { S, SNAPSHOT_MS, api, emit, save, store, video } from "./state.js";

// Screen share + recording ---------------------------------------------------------------------------

export async function askScreen() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({
      video: { displaySurface: "monitor", frameRate: { ideal: 5, max: 10 } },
      audio: false,
      monitorTypeSurfaces: "include",
      selfBrowserSurface: "exclude",
      surfaceSwitching: "exclude",
    });
  } catch (err) {
    return { error: err && err.name === "NotAllowedError" ? "cancelled" : "failed", detail: String(err) };
  }
  const track = stream.getVideoTracks()[0];
  const surface = track ? track.getSettings().displaySurface : undefined;
  if (surface !== "monitor") {
    stream.getTracks().forEach((t) => t.stop());
    emit("device_check", { screen_share: "refused", display_surface: surface || "unknown" });
    return { error: "not_monitor", surface };
  }
  return { stream };
}



export async function shareScreen(next) {
  if (document.documentElement.requestFullscreen && !document.fullscreenElement) {
    document.documentElement.requestFullscreen().catch(() => {});
  }
  await startExamMedia(next);
}

export async function startExamMedia(next) {
  if (!S.cam || !S.cam.getVideoTracks().some((t) => t.readyState === "live")) {
    try {
      S.cam = await dev.openCamera({ cameraId: store.cameraId, micId: store.micId });
    } catch (err) {
      return show("share", { error: "failed", detail: cameraError(err), next });
    }
  }
  if (!S.screen || !S.screen.getVideoTracks().some((t) => t.readyState === "live")) {
    const r = await askScreen();
    if (r.error) return show("share", { ...r, next });
    S.screen = r.stream;
    S.screenLost = false;
  }
  startSignals();
  for (const kind of ["webcam", "screen"]) {
    if (!S.recorders[kind] || !S.recorders[kind].active) await startRecorder(kind);
  }
  startSnapshots();
  if (next === "answering") return startAnswering();
  show(next);
}

export function startSignals() {
  if (!S.signals) S.signals = new Signals(emit);
  S.signals.start();
  for (const [kind, stream] of [["webcam", S.cam], ["screen", S.screen]]) {
    for (const track of stream.getTracks()) {
      if (track.__watched) continue;
      track.__watched = true;
      S.signals.watchTrack(track, kind, () => onTrackEnded(kind, track));
    }
  }
}

export async function startRecorder(kind) {
  const stream = kind === "webcam" ? S.cam : S.screen;
  const rec = new StreamRecorder(S.engine, kind, stream, {
    videoBitsPerSecond: kind === "webcam" ? 400000 : 250000,
    audioBitsPerSecond: 48000,
    onStop: () => onRecorderStopped(kind, rec),
    onError: (e) => emit("client_error", { where: `recorder_${kind}`, error: String(e) }),
  });
  await rec.start();
  S.recorders[kind] = rec;
}

export function onRecorderStopped(kind, rec) {
  if (S.finishing || S.recorders[kind] !== rec) return;
  S.recorders[kind] = null;
  if (kind === "screen") {
    S.screenLost = true;
    renderNet();
  } else {
    reopenCamera();
  }
}

export function onTrackEnded(kind, track) {
  if (S.finishing) return;
  if (kind === "screen") {
    S.screenLost = true;
    if (S.recorders.screen) S.recorders.screen.stop();
    S.recorders.screen = null;
    S.screen = null;
    renderNet();
  } else if (track.kind === "video" || track.kind === "audio") {
    reopenCamera();
  }
}

let reopening = false;
export async function reopenCamera() {
  if (reopening || S.finishing) return;
  reopening = true;
  try {
    for (let i = 0; i < 30 && !S.finishing; i++) {
      try {
        await switchDevices({ cameraId: store.cameraId, micId: store.micId }, true);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  } finally {
    reopening = false;
  }
}

/** Use another camera or microphone: a new webcam recording starts before the old one stops. */
export async function switchDevices(ids, fallbackToDefault = false) {
  let stream;
  try {
    stream = await dev.openCamera(ids);
  } catch (err) {
    if (!fallbackToDefault) throw err;
    stream = await dev.openCamera({});
  }
  const old = S.cam;
  const oldRec = S.recorders.webcam;
  S.cam = stream;
  const vt = stream.getVideoTracks()[0];
  const at0 = stream.getAudioTracks()[0];
  store.cameraId = vt ? vt.getSettings().deviceId : null;
  store.micId = at0 ? at0.getSettings().deviceId : null;
  save();
  if (S.signals && S.signals.active) startSignals();
  if (S.engine && (oldRec || S.view === "confirm" || S.view === "waiting" || S.view === "answering")) {
    S.recorders.webcam = null;
    await startRecorder("webcam");
  }
  if (oldRec) await oldRec.stop();
  if (old) old.getTracks().forEach((t) => t.stop());
  document.querySelectorAll("video.selfview").forEach((v) => (v.srcObject = S.cam));
}

// Snapshots come from the live tracks (trackSnapshotJpeg), never from a <video> element: one
// that is off-screen or hidden is paused by Chrome and draws black.
let snapshotTimer = null;
export function startSnapshots() {
  if (snapshotTimer) return;
  const gate = backoffFor("snapshot");
  snapshotTimer = setInterval(async () => {
    if (!navigator.onLine || !S.token) return;
    for (const kind of ["webcam", "screen"]) {
      // A loaded server asked to wait: skip this round (the next snapshot is as good).
      if (!S.recorders[kind] || !gate.ready()) continue;
      const stream = kind === "webcam" ? S.cam : S.screen;
      const track = stream && stream.getVideoTracks()[0];
      const jpeg = await trackSnapshotJpeg(track, kind === "screen" ? 960 : 640, 0.6);
      if (!jpeg || !gate.ready()) continue; // the previous kind's answer may have come meanwhile
      const form = new FormData();
      form.append("kind", kind);
      form.append("image", jpeg, `${kind}.jpg`);
      api.request("POST", "/api/v1/snapshots", { form, timeout: 10000 }).catch((err) => gate.note(err));
    }
  }, SNAPSHOT_MS);
}

export function stopSnapshots() {
  clearInterval(snapshotTimer);
  snapshotTimer = null;
}
