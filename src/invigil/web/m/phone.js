// The evidence phone (/m/): bound to one candidate by the desk's QR code (#bind=<token>) or its
// 8-digit code, it records a guided 360° room sweep, then from behind and to the side records
// until the candidate stops it after the exam. Recording goes through the upload engine the desk
// uses (IndexedDB first, deleted on acknowledgement); gaps (page hidden, offline, camera lost)
// become evidence_gap events with their durations.

import { ApiError, createApi } from "../shared/api.js";
import { backoffFor } from "../shared/backoff.js";
import { confirmDialog } from "../shared/confirm.js";
import { $, clear, h } from "../shared/dom.js";
import { EventQueue } from "../shared/eventqueue.js";
import { currentLang, formatBytes, onLangChange, setLang, tr as L } from "../shared/i18n.js";
import { StreamRecorder, trackSnapshotJpeg } from "../shared/recorder.js";
import { UploadEngine } from "../shared/upload.js";
import { endButton, endNotice, examEnded as endedFor, stepOnly, stopQuestion, updateExamEnd as showExamEnd } from "./exam-end.js";
import { appName, blockReason, detect, openInBrowserSteps } from "./platform.js";

const STORE_KEY = "invigil.phone";
const SWEEP_DEGREES = 330; // the ring completes at this much turning
const SENSOR_WAIT_MS = 3000; // no orientation event by then: timed sweep instead
const TIMED_SWEEP_S = 20;
const MIN_SWEEP_MS = 3000; // a full turn faster than this films nothing usable (and no chunk)
const SNAPSHOT_MS = 5000;
const SWEEPING_HINT = () => L("正在环拍：请让前置摄像头对着自己，原地缓慢转身一整圈，让房间四周和桌面都被拍到。", "Sweeping: keep the front camera on you and turn slowly once around so the whole room and desk are filmed.");
const HEARTBEAT_MS = 10000;
const PLACE_SNAPSHOT_MS = 3000; // while placing, the desk shows the phone's picture this fresh
const ALIVE_KEY = "invigil.phone.alive"; // last moment the page was recording (reload gaps)

const S = {
  token: null,
  attemptId: null,
  info: null, // {candidate, exam}
  phase: "bind", // bind | sweep | place | recording | uploading | done
  stateName: null, // what the desk sees: bound | sweeping | recording | stopped
  engine: null,
  events: null,
  stream: null,
  video: null,
  recorder: null,
  sweep: null,
  gaps: {},
  wakeLock: null,
  timers: {},
  serverDone: false,
  ended: null, // the server's word: "submitted" | "time_over" | null (exam still running)
  deadline: null, // this candidate's deadline (ms, server time)
  skew: 0, // server time minus this phone's clock (ms)
  mirror: false, // the preview is mirrored only for a front (user-facing) camera
};

const api = createApi({ getToken: () => S.token });
// Known at page open, before anything is bound: an in-app browser that cannot record is told
// so at once, with the way out, instead of after the candidate has bound and swept.
const P = detect();

window.__invigil = {
  S,
  platform: P,
  chunkLog: () => (S.engine ? S.engine.chunkLog() : []),
  uploads: () => (S.engine ? S.engine.summary() : []),
  gaps: () => (S.events ? S.events.sent.filter((e) => e.kind === "evidence_gap") : []),
};

// --- storage ---------------------------------------------------------------------------------

function loadStore() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "null");
  } catch {
    return null;
  }
}

function save() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify({ token: S.token, attemptId: S.attemptId, info: S.info, phase: S.phase }));
  } catch {
    /* storage blocked: a reload then asks for the code again */
  }
}

function setPhase(phase) {
  S.phase = phase;
  save();
  show(phase);
}

// --- screens ---------------------------------------------------------------------------------

const VIEWS = {};

function show(name) {
  const main = clear($("#main"));
  main.append(VIEWS[name]());
  document.body.dataset.screen = name;
}

function who() {
  if (!S.info) return null;
  return h("p", { class: "who", id: "who" }, L("考生：{n}（准考证号 {t}）", "Candidate: {n} ({t})", { n: S.info.candidate.name, t: S.info.candidate.ticket }), h("br"), S.info.exam.title);
}

function button(text, onclick, cls = "big") {
  return h("button", { type: "button", class: cls, onclick }, text);
}

function banner(text, cls = "") {
  const b = $("#banner");
  if (!text) {
    b.hidden = true;
    b.textContent = "";
    return;
  }
  b.className = "phone-banner " + cls;
  b.textContent = text;
  b.hidden = false;
}

function cameraBox(extra) {
  if (!S.video) {
    S.video = h("video", { autoplay: true, muted: true, playsInline: true, id: "preview" });
    S.video.muted = true;
  }
  if (S.stream && S.video.srcObject !== S.stream) S.video.srcObject = S.stream;
  S.video.classList.toggle("mirror", S.mirror);
  return h("div", { class: "camera" }, S.video, extra);
}

/** Inside WeChat/QQ/Alipay when the page can work there: where to go if it stops working. */
function inAppHint() {
  if (!P.inApp) return null;
  return h("p", { class: "hint in-app", id: "in-app-hint" },
    L("您正在{app}中打开本页。如摄像头或录像无法使用，请点右上角【···】→“{item}”，用手机浏览器继续。", "You opened this page inside {app}. If the camera or recording fails, tap ··· at the top right → {item} and carry on there.", {
      app: appName(P.inApp),
      item: P.ios ? L("在 Safari 中打开", "Open in Safari") : L("在浏览器打开", "Open in Browser"),
    }));
}

VIEWS.unsupported = () => {
  const link = h("input", { id: "page-link", readonly: true, value: location.href, "aria-label": L("本页链接", "Link to this page") });
  const copied = h("p", { class: "hint", id: "copy-state", role: "status" });
  const copy = button(L("复制链接", "Copy link"), async () => {
    link.select();
    try {
      await navigator.clipboard.writeText(link.value);
    } catch {
      // In-app browsers often refuse the clipboard API; the selected field still copies.
      try {
        document.execCommand("copy");
      } catch {
        /* the candidate copies the selected text by hand */
      }
    }
    copied.textContent = L("链接已复制：请粘贴到手机浏览器的地址栏中打开。", "Link copied: paste it into the phone browser's address bar.");
  }, "big secondary");
  return h("section", { id: "unsupported" },
    h("h1", null, P.inApp ? L("请用手机浏览器打开本页", "Open this page in the phone's browser") : L("此浏览器无法录像", "This browser cannot record")),
    h("p", { class: "error", role: "alert", id: "unsupported-reason" }, blockReason(P)),
    P.inApp ? h("ol", { class: "guide", id: "open-steps" }, ...openInBrowserSteps(P).map((t) => h("li", null, t))) : null,
    h("label", { class: "field link", for: "page-link" }, h("span", null, L("本页链接", "Link to this page")), link),
    copy,
    copied);
};

VIEWS.bind = () => {
  const input = h("input", { id: "bind-code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "8", pattern: "[0-9]*" });
  const msg = h("p", { class: "error", id: "bind-message", role: "alert" }, S.bindError || "");
  const go = button(L("绑定", "Bind"), async () => {
    const code = input.value.replace(/\D/g, "");
    if (code.length !== 8) {
      msg.textContent = L("请输入电脑屏幕上显示的 8 位绑定码。", "Enter the 8-digit code shown on the computer.");
      return;
    }
    go.disabled = true;
    msg.textContent = "";
    try {
      await bindWith({ code });
    } catch (err) {
      msg.textContent = errorText(err);
      go.disabled = false;
    }
  });
  return h("section", null,
    h("h1", null, L("绑定手机佐证摄像头", "Bind this phone")),
    h("p", { class: "hint" }, L("请用手机相机扫描考试电脑上显示的二维码；或在下方输入电脑上显示的 8 位绑定码。", "Scan the QR code shown on the exam computer, or type its 8-digit code below.")),
    h("label", { class: "field", for: "bind-code" }, h("span", null, L("绑定码", "Binding code")), input),
    go,
    msg,
    inAppHint());
};

VIEWS.sweep = () => {
  const ring = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  ring.setAttribute("viewBox", "0 0 100 100");
  ring.setAttribute("class", "ring");
  ring.setAttribute("role", "progressbar");
  ring.setAttribute("aria-label", L("环拍进度", "Sweep progress"));
  ring.setAttribute("aria-valuemin", "0");
  ring.setAttribute("aria-valuemax", "100");
  ring.setAttribute("aria-valuenow", "0");
  ring.id = "sweep-ring";
  const C = 2 * Math.PI * 44;
  for (const cls of ["track", "bar"]) {
    const c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    c.setAttribute("cx", "50");
    c.setAttribute("cy", "50");
    c.setAttribute("r", "44");
    c.setAttribute("class", cls);
    if (cls === "bar") {
      c.setAttribute("stroke-dasharray", String(C));
      c.setAttribute("stroke-dashoffset", String(C));
      c.setAttribute("transform", "rotate(-90 50 50)");
    }
    ring.append(c);
  }
  const label = h("div", { class: "ring-label", id: "sweep-label" }, "0%");
  const hint = h("p", { class: "hint", id: "sweep-hint" }, L("点击【开始环拍】后，手持手机让前置摄像头对着自己，原地缓慢转身一整圈，让房间四周和桌面都被拍到。", "Press Start sweep, hold the phone with the front camera on you and turn slowly once around so the whole room and desk are filmed."));
  // iPhone/iPad: the motion sensor is asked for from the 开始环拍 tap; say what will pop up.
  const motion = P.motionPermission
    ? h("p", { class: "hint", id: "motion-hint" }, L("随后手机会询问是否允许访问“动作与方向”：请点【允许】，圆环才能显示您转身的进度。", "The phone then asks to allow “Motion & Orientation”: tap Allow so the ring can follow your turn."))
    : null;
  const msg = h("p", { class: "error", id: "sweep-message", role: "alert" });
  const confirm = button(L("已转完一圈，完成环拍", "I turned a full circle"), () => finishSweep(), "big");
  confirm.hidden = true;
  confirm.disabled = true;
  confirm.id = "sweep-confirm";
  const start = button(L("开始环拍", "Start sweep"), async () => {
    start.disabled = true;
    msg.textContent = "";
    try {
      await startSweep({ ring, bar: ring.lastChild, C, label, hint, confirm });
      start.hidden = true;
      // The step has begun: what to press and what will pop up no longer apply.
      if (motion) motion.hidden = true;
      if (S.sweep && !S.sweep.sensor && !S.sweep.timedFrom) hint.textContent = SWEEPING_HINT();
    } catch (err) {
      msg.textContent = cameraErrorText(err);
      start.disabled = false;
    }
  });
  setTimeout(updateExamEnd, 0);
  return h("section", null,
    h("h1", null, L("第一步：360° 环拍房间", "Step 1: 360° room sweep")),
    endNotice(),
    who(),
    ...stepOnly(cameraBox([ring, label]), hint, motion, start, confirm),
    endButton(endAfterExam),
    msg,
    inAppHint());
};

VIEWS.place = () => {
  const msg = h("p", { class: "error", id: "place-message", role: "alert" });
  const start = button(L("开始录制", "Start recording"), async () => {
    start.disabled = true;
    try {
      await startRecording();
    } catch (err) {
      msg.textContent = cameraErrorText(err);
      start.disabled = false;
    }
  });
  const box = cameraBox();
  if (!S.stream) camera().then(() => cameraBox()).catch(() => {});
  startPlacing();
  setTimeout(updateExamEnd, 0);
  return h("section", null,
    h("h1", null, L("第二步：摆放手机", "Step 2: place the phone")),
    endNotice(),
    who(),
    ...stepOnly(h("ol", { class: "guide", id: "place-guide" },
      h("li", null, L("把手机固定在您身体的侧后方约 45° 处（可用支架或靠在物品上）。", "Fix the phone behind you and to the side, at about 45° (a stand or something to lean on).")),
      h("li", null, L("画面中应同时看到：您本人、桌面和电脑屏幕。", "The picture must show you, the desk and the computer screen.")),
      h("li", null, L("接上充电器，保持手机联网；录制期间不要切换到其他应用或接听电话。", "Plug in the charger and stay online; do not switch apps or take calls while recording.")),
      h("li", null, L("手机画面会显示在电脑上：请在电脑上确认机位，然后点击【开始录制】。", "The computer shows this picture: confirm the placement there, then press Start recording."))),
    box,
    h("p", { class: "placement", id: "placement-state", role: "status" }, placementText()),
    start),
    endButton(endAfterExam),
    msg);
};

VIEWS.recording = () => {
  const stats = h("p", { class: "stats", id: "rec-stats", role: "status" });
  const stop = button(L("结束录制", "Stop recording"), async () => {
    stop.disabled = true;
    await refreshExamEnd(); // the dialog's words follow the server's latest answer
    stop.disabled = false;
    const end = examEnded();
    // The button says what it does (确定结束录制): 确定 is the contract's confirmation word.
    const ok = await confirmDialog(stopQuestion(end), {
      ok: L("确定结束录制", "OK, stop recording"),
      cancel: L("取消，继续录制", "Cancel, keep recording"),
      danger: !end,
    });
    if (ok) await stopRecording();
  }, "big danger");
  stop.id = "stop-recording";
  const view = h("section", null,
    h("h1", null, L("正在录制", "Recording")),
    endNotice(),
    who(),
    cameraBox(h("span", { class: "rec-dot" }, "● REC")),
    h("p", { class: "hint" }, L("请保持手机位置不动、屏幕常亮、联网。考试结束后点击【结束录制】，并等待上传完成。", "Keep the phone still, screen on and online. After the exam press Stop recording and wait for the upload to finish.")),
    stats,
    stop);
  updateStats();
  setTimeout(updateExamEnd, 0);
  return view;
};

const examEnded = () => endedFor(S);
const updateExamEnd = () => showExamEnd(S);

/** What the server said about the exam's end (the status heartbeat's and /state's answers). */
function noteExamEnd(r) {
  if (!r) return;
  if (r.now) S.skew = Date.parse(r.now) - Date.now();
  if (r.deadline) S.deadline = Date.parse(r.deadline);
  if ("ended" in r) S.ended = r.ended || null;
  updateExamEnd();
}

async function refreshExamEnd() {
  // A read, not a status report: a report cut off by this timeout may still reach the server
  // after a later one (结束录制's "stopped") and put back the state it replaced.
  try {
    noteExamEnd(await api.get("/api/v1/phone/state", { timeout: 3000 }));
  } catch {
    /* offline: the last answer stands */
  }
}

VIEWS.uploading = () => {
  const bar = h("progress", { id: "upload-progress", max: "100", value: "0", "aria-label": L("上传进度", "Upload progress") });
  const text = h("p", { class: "stats", id: "upload-text", role: "status" });
  const view = h("section", null,
    h("h1", null, L("正在上传", "Uploading")),
    who(),
    h("p", { class: "hint" }, L("录制已结束。请保持本页面打开、手机联网，直到显示“上传完成”。", "Recording stopped. Keep this page open and online until it says upload complete.")),
    bar,
    text);
  setTimeout(updateUpload, 0);
  return view;
};

VIEWS.done = () =>
  h("section", null,
    h("h1", null, L("录制已结束", "Recording stopped")),
    who(),
    h("p", { class: "done", id: "upload-done", role: "status" }, L("上传完成", "Upload complete")),
    h("p", { class: "hint" }, L("手机录像已全部上传。现在可以关闭本页面。", "Everything is uploaded. You may close this page.")));

/** While the phone is being placed: fresh pictures for the desk, and the desk's answer here. */
function startPlacing() {
  if (S.phase !== "place") return;
  setDeskState("placing");
  if (!S.timers.place) {
    S.timers.place = setInterval(() => {
      if (S.phase !== "place") return stopPlacing();
      sendSnapshot();
      readPlacement();
    }, PLACE_SNAPSHOT_MS);
  }
}

function stopPlacing() {
  clearInterval(S.timers.place);
  delete S.timers.place;
}

async function readPlacement() {
  try {
    const st = await api.get("/api/v1/phone/state");
    noteExamEnd(st);
    S.placement = st.evidence && st.evidence.placement;
    const el = $("#placement-state");
    if (el) {
      el.textContent = placementText();
      el.dataset.state = S.placement ? S.placement.state : "";
    }
  } catch {
    /* offline: next time */
  }
}

function placementText() {
  const p = S.placement;
  if (!p) return L("等待考生在电脑上确认机位…", "Waiting for the placement to be confirmed on the computer…");
  return p.state === "confirmed"
    ? L("✓ 已在电脑上确认机位，可以开始录制。", "✓ Placement confirmed on the computer: start recording.")
    : L("电脑上要求重新摆放手机：请调整位置，让画面同时拍到您、桌面和屏幕。", "The computer asks to place the phone again: adjust it so it shows you, the desk and the screen.");
}

// --- binding ---------------------------------------------------------------------------------

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.offline) return L("网络连接失败，请检查手机网络后重试。", "No network: check the phone's connection and retry.");
    return err.message || err.code;
  }
  return String(err && err.message ? err.message : err);
}

function cameraErrorText(err) {
  const name = err && err.name;
  if (name === "NotAllowedError") return L("摄像头权限被拒绝。请在浏览器设置中允许本网站使用摄像头，然后刷新页面。", "Camera permission denied: allow the camera for this site and reload.");
  if (name === "NotReadableError") return L("摄像头被其他应用占用。请关闭其他使用摄像头的应用后重试。", "Another app is using the camera: close it and retry.");
  const text = L("无法打开摄像头：{e}", "Cannot open the camera: {e}", { e: errorText(err) });
  if (!P.inApp) return text;
  return text + L("。{app}内置浏览器可能不支持：请点右上角【···】→“在浏览器打开”，用手机浏览器继续。", ". The {app} browser may not allow it: tap ··· → Open in Browser and carry on there.", { app: appName(P.inApp) });
}

async function bindWith(body) {
  const r = await api.post("/api/v1/phone/bind", body, { token: null });
  if (S.attemptId && S.attemptId !== r.attempt_id) {
    // Bound to another candidate now: this page's engine and queue belonged to the first.
    if (S.engine) S.engine.close();
    if (S.events) S.events.stop();
    S.engine = S.events = null;
  }
  S.token = r.token;
  S.attemptId = r.attempt_id;
  S.info = { candidate: r.candidate, exam: r.exam };
  S.bindError = null;
  save();
  await startServices();
  setDeskState("bound");
  setPhase("sweep");
}

function forget(message) {
  stopTimers();
  S.token = null;
  S.bindError = message;
  try {
    localStorage.removeItem(STORE_KEY);
  } catch {
    /* ignore */
  }
  if (S.engine) S.engine.close();
  S.engine = null;
  if (S.events) S.events.stop();
  S.events = null;
  setPhase("bind");
}

async function startServices() {
  if (!S.engine) {
    S.engine = new UploadEngine({
      api,
      owner: S.attemptId,
      onChange: () => {
        updateStats();
        updateUpload();
      },
      onAuthLost: () => banner(L("手机绑定已失效（可能已绑定了另一部手机）。录像仍保存在本机；请在电脑上重新生成绑定码后重新绑定。", "This phone is no longer bound. Recordings are kept here; bind again from the computer."), "warn"),
    });
    await S.engine.open();
  }
  if (!S.events) {
    S.events = new EventQueue({ api, storageKey: `invigil.phone.events.${S.attemptId}`, path: "/api/v1/phone/events" });
    S.events.start();
  }
  if (!S.timers.beat) S.timers.beat = setInterval(() => setDeskState(S.stateName), HEARTBEAT_MS);
}

function stopTimers() {
  for (const k of Object.keys(S.timers)) {
    clearInterval(S.timers[k]);
    delete S.timers[k];
  }
}

// One report in flight at a time, the newest state next: two in flight may be served in either
// order (a loaded server, a slow link), and a late "recording" would hide 结束录制's "stopped"
// from the desk until the next heartbeat.
const deskReport = { busy: false, pending: false };

/** What the desk and staff see; also the phone's heartbeat. */
function setDeskState(name) {
  if (!name) return;
  const changed = name !== S.stateName;
  S.stateName = name;
  // A loaded server asked to wait (503/429 Retry-After): skip the periodic repeat, never a change.
  if (!changed && !backoffFor("status").ready()) return;
  deskReport.pending = true;
  if (!deskReport.busy) sendDeskState();
}

async function sendDeskState() {
  deskReport.busy = true;
  while (deskReport.pending) {
    deskReport.pending = false;
    try {
      noteExamEnd(await api.post("/api/v1/phone/status", { state: S.stateName }));
    } catch (err) {
      if (backoffFor("status").note(err)) continue; // the heartbeat repeats it once allowed
      if (err instanceof ApiError && err.status === 401) forget(L("手机绑定已失效，请重新绑定。", "This phone is no longer bound: bind again."));
    }
  }
  deskReport.busy = false;
}

// --- camera ----------------------------------------------------------------------------------

async function camera() {
  if (S.stream && S.stream.getVideoTracks().some((t) => t.readyState === "live")) return S.stream;
  const video = { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } };
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video, audio: true });
  } catch (err) {
    if (err && err.name === "NotAllowedError") throw err;
    stream = await navigator.mediaDevices.getUserMedia({ video });
  }
  S.stream = stream;
  for (const t of stream.getVideoTracks()) t.addEventListener("ended", () => onCameraLost());
  // Every stored picture and the desk show the camera's real orientation; a selfie-style mirror
  // is kept only for a camera that says it faces the user (a rear camera or one that does not
  // say is shown as it films).
  const track = stream.getVideoTracks()[0];
  const settings = track && track.getSettings ? track.getSettings() : {};
  S.mirror = settings.facingMode === "user";
  if (S.video) {
    S.video.srcObject = stream;
    S.video.classList.toggle("mirror", S.mirror);
  }
  return stream;
}

function releaseCamera() {
  if (S.stream) for (const t of S.stream.getTracks()) t.stop();
  S.stream = null;
  if (S.video) S.video.srcObject = null;
}

// --- the room sweep ----------------------------------------------------------------------------

async function startSweep(ui) {
  // iOS asks for the motion sensor from a tap: this must be the first await of the click.
  let permission = "granted";
  if (typeof DeviceOrientationEvent !== "undefined" && typeof DeviceOrientationEvent.requestPermission === "function") {
    try {
      permission = await DeviceOrientationEvent.requestPermission();
    } catch {
      permission = "denied";
    }
  }
  const stream = await camera();
  const rec = new StreamRecorder(S.engine, "evidence", stream);
  await rec.start();
  const sw = { rec, ui, total: 0, last: null, sensor: false, timedFrom: null, done: false, startedAt: Date.now() };
  S.sweep = sw;
  setDeskState("sweeping");
  sw.onOrientation = (e) => {
    if (e.alpha === null || e.alpha === undefined || sw.done) return;
    if (!sw.sensor) {
      sw.sensor = true;
      clearInterval(sw.timer);
      ui.confirm.hidden = true;
      ui.hint.textContent = L("请继续缓慢转身，直到圆环走满。", "Keep turning slowly until the ring is full.");
    }
    if (sw.last !== null) sw.total += Math.abs(((e.alpha - sw.last + 540) % 360) - 180);
    sw.last = e.alpha;
    sweepProgress(sw.total / SWEEP_DEGREES);
    if (sw.total >= SWEEP_DEGREES) finishWhenLongEnough();
  };
  addEventListener("deviceorientation", sw.onOrientation);
  sw.waitSensor = setTimeout(() => {
    if (sw.sensor || sw.done) return;
    // No sensor answered (or permission refused): a timed sweep the candidate confirms.
    sw.timedFrom = Date.now();
    ui.hint.textContent = L("未检测到方向传感器。请在 {s} 秒内缓慢转身一整圈，完成后点击下方按钮确认。", "No orientation sensor: turn slowly once around within {s} s, then confirm below.", { s: TIMED_SWEEP_S });
    ui.confirm.hidden = false;
    sw.timer = setInterval(() => {
      const p = (Date.now() - sw.timedFrom) / (TIMED_SWEEP_S * 1000);
      sweepProgress(p);
      if (p >= 1) {
        clearInterval(sw.timer);
        ui.confirm.disabled = false;
      }
    }, 250);
  }, permission === "granted" ? SENSOR_WAIT_MS : 0);
}

/** The turn is complete: finish, but only once the sweep has filmed for MIN_SWEEP_MS. */
function finishWhenLongEnough() {
  const sw = S.sweep;
  if (!sw || sw.finishing) return;
  sw.finishing = true;
  setTimeout(finishSweep, Math.max(0, sw.startedAt + MIN_SWEEP_MS - Date.now()));
}

function sweepProgress(p) {
  const sw = S.sweep;
  if (!sw) return;
  const v = Math.max(0, Math.min(1, p));
  sw.ui.bar.setAttribute("stroke-dashoffset", String(sw.ui.C * (1 - v)));
  sw.ui.ring.setAttribute("aria-valuenow", String(Math.round(v * 100)));
  sw.ui.label.textContent = `${Math.round(v * 100)}%`;
}

async function finishSweep() {
  const sw = S.sweep;
  if (!sw || sw.done) return;
  sw.done = true;
  removeEventListener("deviceorientation", sw.onOrientation);
  clearTimeout(sw.waitSensor);
  clearInterval(sw.timer);
  sweepProgress(1);
  await sw.rec.stop(); // the engine uploads and finalizes it in the background
  S.sweep = null;
  setPhase("place"); // reports "placing" to the desk
  sendSnapshot(); // the desk shows it for the candidate to check the placement
}

// --- continuous recording ------------------------------------------------------------------------

async function startRecording() {
  const stream = await camera();
  const rec = new StreamRecorder(S.engine, "evidence", stream, {
    onStop: () => {
      if (S.phase === "recording" && S.recorder === rec) onCameraLost();
    },
  });
  await rec.start();
  stopPlacing();
  S.recorder = rec;
  S.phase = "recording";
  save();
  markAlive();
  gapEnd("reload");
  setDeskState("recording");
  if (!S.timers.snap) S.timers.snap = setInterval(sendSnapshot, SNAPSHOT_MS);
  if (!S.timers.stats) S.timers.stats = setInterval(() => {
    updateStats();
    updateExamEnd();
    markAlive();
  }, 1000);
  keepAwake();
  show("recording");
}

/** The desk's and the proctors' picture of the phone (placement and every 5 s while recording):
 * taken from the camera track itself, so a preview that is scrolled away or hidden never
 * makes it black. */
async function sendSnapshot() {
  const gate = backoffFor("snapshot");
  if (!S.stream || !gate.ready()) return; // a loaded server asked to wait: skip this one
  const jpeg = await trackSnapshotJpeg(S.stream.getVideoTracks()[0], 640, 0.6);
  if (!jpeg || !gate.ready()) return;
  const form = new FormData();
  form.append("kind", "evidence");
  form.append("image", jpeg, "evidence.jpg");
  api.request("POST", "/api/v1/snapshots", { form, timeout: 10000 }).catch((err) => gate.note(err));
}

async function keepAwake() {
  if (!("wakeLock" in navigator) || S.wakeLock || document.visibilityState !== "visible") return;
  try {
    S.wakeLock = await navigator.wakeLock.request("screen");
    S.wakeLock.addEventListener("release", () => {
      S.wakeLock = null;
    });
  } catch {
    /* refused (battery saver): the guide asks for the charger */
  }
}

function alarm() {
  banner(L("⚠ 手机录制已中断！请立即检查手机：不要切换应用，保持摄像头可用。", "⚠ Phone recording stopped! Check the phone now: stay in this page, keep the camera free."));
  try {
    if (navigator.vibrate) navigator.vibrate([600, 200, 600, 200, 600]);
  } catch {
    /* ignore */
  }
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = 880;
    gain.gain.value = 0.3;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 1.2);
    osc.onended = () => ctx.close();
  } catch {
    /* no audio */
  }
}

/** Each second of recording leaves its time behind, so a reload can tell how long it lost. */
function markAlive() {
  try {
    if (S.phase === "recording" && S.recorder && S.recorder.active) localStorage.setItem(ALIVE_KEY, String(Date.now()));
  } catch {
    /* ignore */
  }
}

function lastAlive() {
  try {
    const t = Number(localStorage.getItem(ALIVE_KEY));
    return Number.isFinite(t) && t > 0 ? t : null;
  } catch {
    return null;
  }
}

function gapStart(reason) {
  if (S.phase !== "recording" || S.gaps[reason]) return;
  const t = Date.now();
  S.gaps[reason] = { t, iso: new Date(t).toISOString() };
}

function gapEnd(reason) {
  const g = S.gaps[reason];
  if (!g) return;
  delete S.gaps[reason];
  if (S.events) S.events.push("evidence_gap", { reason, duration_ms: Date.now() - g.t, started_at: g.iso });
}

/** The camera stopped delivering (another app took it, a call): warn, then try to go on. */
function onCameraLost() {
  if (S.phase !== "recording" || S.gaps.camera) return;
  gapStart("camera");
  alarm();
  if (S.recorder) S.recorder.stop();
  S.recorder = null;
  releaseCamera();
  clearInterval(S.timers.resume);
  S.timers.resume = setInterval(tryResume, 3000);
}

async function tryResume() {
  if (S.phase !== "recording" || document.visibilityState === "hidden" || S.resuming) return;
  S.resuming = true;
  try {
    const stream = await camera();
    const rec = new StreamRecorder(S.engine, "evidence", stream, {
      onStop: () => {
        if (S.phase === "recording" && S.recorder === rec) onCameraLost();
      },
    });
    await rec.start();
    S.recorder = rec;
    clearInterval(S.timers.resume);
    delete S.timers.resume;
    gapEnd("camera");
    banner(null);
    setDeskState("recording");
    if (document.body.dataset.screen === "recording") show("recording");
  } catch {
    /* still taken: next try in 3 s */
  } finally {
    S.resuming = false;
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") {
    gapStart("hidden");
    return;
  }
  gapEnd("hidden");
  if (S.phase === "recording") {
    keepAwake();
    if (!S.recorder || !S.recorder.active) onCameraLost();
  }
});
addEventListener("offline", () => {
  gapStart("offline");
  netStatus();
});
addEventListener("online", () => {
  gapEnd("offline");
  netStatus();
});

function netStatus() {
  const el = $("#net");
  if (!el) return;
  const backlog = S.engine ? S.engine.backlog() : { chunks: 0, bytes: 0 };
  el.textContent = navigator.onLine
    ? backlog.chunks > 1 ? L("待上传 {n}", "{n} to upload", { n: formatBytes(backlog.bytes) }) : L("在线", "Online")
    : L("网络已断开", "Offline");
}

function totals() {
  const rows = S.engine ? S.engine.summary().filter((r) => r.kind === "evidence") : [];
  return {
    rows,
    produced: rows.reduce((n, r) => n + r.produced, 0),
    acked: rows.reduce((n, r) => n + r.acked, 0),
    bytes: rows.reduce((n, r) => n + r.producedBytes, 0),
  };
}

function updateStats() {
  netStatus();
  const el = $("#rec-stats");
  if (!el || !S.recorder) return;
  const secs = Math.floor((Date.now() - S.recorder.startedAt) / 1000);
  const t = totals();
  el.textContent = L("已录制 {m} 分 {s} 秒 · 已上传 {a}/{p} 段（{b}）", "Recorded {m} min {s} s · uploaded {a}/{p} chunks ({b})", {
    m: Math.floor(secs / 60), s: secs % 60, a: t.acked, p: t.produced, b: formatBytes(t.bytes),
  });
}

// --- stop and upload ---------------------------------------------------------------------------

async function stopRecording() {
  S.phase = "uploading";
  save();
  for (const k of ["snap", "stats", "resume"]) {
    clearInterval(S.timers[k]);
    delete S.timers[k];
  }
  S.gaps = {};
  banner(null);
  const rec = S.recorder;
  S.recorder = null;
  if (rec) await rec.stop();
  releaseCamera();
  if (S.wakeLock) S.wakeLock.release().catch(() => {});
  setDeskState("stopped");
  show("uploading");
}

/** The exam ended before this phone recorded it (still sweeping or being placed): end the
 * sweep if one runs, and upload what the phone holds as after a recording. */
async function endAfterExam() {
  const sw = S.sweep;
  if (sw) {
    sw.done = true;
    removeEventListener("deviceorientation", sw.onOrientation);
    clearTimeout(sw.waitSensor);
    clearInterval(sw.timer);
    S.sweep = null;
    await sw.rec.stop();
  }
  stopPlacing();
  await stopRecording();
}

async function updateUpload() {
  netStatus();
  const bar = $("#upload-progress");
  if (!bar || S.phase !== "uploading") return;
  const t = totals();
  const fin = t.rows.filter((r) => r.finalized).length;
  const pct = t.produced ? Math.round((100 * (t.acked + fin)) / (t.produced + t.rows.length)) : 100;
  bar.value = Math.min(100, pct);
  const failed = t.rows.filter((r) => r.error);
  $("#upload-text").textContent = failed.length
    ? L("有录像未能上传（{e}），请联系技术服务。", "A recording could not be uploaded ({e}): contact tech support.", { e: failed.map((r) => r.error).join(", ") })
    : L("已上传 {a}/{p} 段，{pct}%", "Uploaded {a}/{p} chunks, {pct}%", { a: t.acked, p: t.produced, pct: bar.value });
  if (!failed.length && t.rows.every((r) => r.finalized) && !S.checking) checkServer();
}

/** 上传完成 only once the server says every evidence recording is finalized. */
async function checkServer() {
  S.checking = true;
  try {
    const up = await api.get("/api/v1/candidate/uploads");
    const mine = new Set(totals().rows.filter((r) => r.recordingId).map((r) => r.recordingId));
    const ev = up.recordings.filter((r) => r.kind === "evidence");
    const ok = [...mine].every((id) => ev.some((r) => r.id === id && r.state === "finalized"));
    if (ok && S.phase === "uploading") {
      $("#upload-progress").value = 100;
      setPhase("done");
      return;
    }
  } catch {
    /* offline or refused: look again */
  } finally {
    S.checking = false;
  }
  setTimeout(updateUpload, 2000);
}

// --- start -------------------------------------------------------------------------------------

/** The QR code's URL (/m/#bind=<token>): bind with it at once. True when there was one. */
async function bindFromHash() {
  const m = location.hash.match(/[#&]bind=([^&]+)/);
  if (!m) return false;
  // The QR token is single-use: take it out of the address (and the history) at once.
  history.replaceState(null, "", location.pathname + location.search);
  if (S.phase === "recording" || S.phase === "uploading") return true; // never mid-recording
  try {
    await bindWith({ token: decodeURIComponent(m[1]) });
  } catch (err) {
    S.bindError = errorText(err);
    setPhase("bind");
  }
  return true;
}

// A QR code opened in a tab that already shows this page changes only the fragment.
addEventListener("hashchange", () => (P.usable ? bindFromHash() : show("unsupported")));

async function boot() {
  if (!P.usable) {
    // Before binding: the one-time token stays in the address, for the system browser.
    show("unsupported");
    return;
  }
  if (await bindFromHash()) return;
  const saved = loadStore();
  if (!saved || !saved.token) {
    show("bind");
    return;
  }
  Object.assign(S, { token: saved.token, attemptId: saved.attemptId, info: saved.info, phase: saved.phase || "sweep" });
  try {
    const st = await api.get("/api/v1/phone/state");
    noteExamEnd(st);
    S.info = { candidate: st.candidate, exam: st.exam };
    save();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forget(L("手机绑定已失效，请重新绑定。", "This phone is no longer bound: bind again."));
      return;
    }
    // Offline: carry on with what is stored; uploads wait for the network.
  }
  await startServices();
  if (S.phase === "recording") {
    // Reloaded mid-exam: the engine finalizes the interrupted recording; start a new one. The
    // time since the old page last recorded is a gap like any other.
    const since = lastAlive();
    if (since) S.gaps.reload = { t: since, iso: new Date(since).toISOString() };
    show("place");
    try {
      await startRecording();
    } catch {
      /* the candidate presses 开始录制; the gap ends when recording does start */
    }
    return;
  }
  if (S.phase === "uploading") setDeskState("stopped");
  else if (S.phase === "sweep") setDeskState("bound");
  show(S.phase === "bind" ? "sweep" : S.phase);
}

// --- language ------------------------------------------------------------------------------------

function renderChrome() {
  document.title = L("手机佐证摄像头 · invigil", "Evidence phone · invigil");
  $(".brand-name").textContent = L("手机佐证摄像头", "Evidence phone");
  $("#lang").textContent = currentLang() === "en" ? "中文" : "English";
  netStatus();
}

$("#lang").addEventListener("click", () => setLang(currentLang() === "en" ? "zh-CN" : "en"));
onLangChange(() => {
  renderChrome();
  // A sweep in progress keeps its screen (its ring is live); every other screen is redrawn.
  if (!S.sweep && document.body.dataset.screen) show(document.body.dataset.screen);
});
renderChrome();

boot();
