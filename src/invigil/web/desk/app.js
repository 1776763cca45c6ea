// The candidate's desk client: the whole exam day in one page.
//
// Stages (DESIGN.md): 设备准备 → 人脸登录 → 佐证绑定 → 抽签 → 阅读考试附件 → 进入考试 → 设备确认
// → 开始答题 → 结束考试, then the upload status. The server decides the stage (GET state); this
// page shows it, keeps the recordings safe (IndexedDB first, see ../shared/upload.js) and
// reports integrity signals.

import { ApiError, ServerClock, createApi } from "../shared/api.js";
import { $, clear, h } from "../shared/dom.js";
import { EventQueue } from "../shared/eventqueue.js";
import { clockTime, countdown, currentLang, formatBytes, onLangChange, setLang, tr } from "../shared/i18n.js";
import { placementPanel } from "./placement.js";
import { addLiveness, livenessError } from "./liveness.js";
import { consentPanel, recordConsent } from "./consent.js";
import { StreamRecorder, trackSnapshotJpeg } from "../shared/recorder.js";
import { UploadEngine } from "../shared/upload.js";
import * as dev from "./device.js";
import { Signals } from "./signals.js";

const params = new URLSearchParams(location.search);
const examId = params.get("exam") || "";
const STORE_KEY = `invigil.desk.${examId}`;
const HEARTBEAT_MS = 5000;
const SNAPSHOT_MS = 5000;

// --- persisted per exam on this computer (survives reloads and crashes) -----------------------

function loadStore() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
  } catch {
    return {};
  }
}
const store = loadStore();
function save() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(store));
  } catch {
    /* storage blocked: works for this page only */
  }
}

// --- app state ---------------------------------------------------------------------------------

const S = {
  view: null,
  viewArg: null,
  state: null, // GET /candidate/state
  token: store.token || null,
  clock: new ServerClock(),
  cam: null, // camera + microphone MediaStream
  screen: null, // whole-screen MediaStream
  recorders: { webcam: null, screen: null },
  engine: null,
  signals: null,
  meter: null,
  questions: null,
  questionsError: null,
  finishing: false,
  loginFailures: 0,
  loginMessage: null,
  report: {}, // device check results, sent as a device_check event after login
  uploads: null, // GET /candidate/uploads
  help: { open: false, messages: [], error: null, unread: 0 },
  problems: [],
  tick: null,
  timers: [],
  screenLost: false,
};

const api = createApi({
  getToken: () => S.token,
  onUnauthorized: (err) => sessionLost(err),
});
const events = new EventQueue({ api, storageKey: `invigil.events.${examId}` });

window.__invigil = {
  S,
  store,
  api,
  events,
  chunkLog: () => (S.engine ? S.engine.chunkLog() : []),
  uploads: () => (S.engine ? S.engine.summary() : []),
  eventsSent: () => events.sent,
};

// --- small helpers -------------------------------------------------------------------------------

const main = $("#main");
const L = (zh, en, vars) => tr(zh, en, vars);
const tz = () => (S.state && S.state.exam ? S.state.exam.utc_offset_minutes : undefined);
const at = (iso, sec = false) => clockTime(iso, tz(), sec);
const serverNow = () => S.clock.now();
const until = (iso) => Date.parse(iso) - serverNow();

function emit(kind, data = {}) {
  events.push(kind, data);
}

function button(label, onclick, opts = {}) {
  return h("button", { type: "button", class: opts.class || "", onclick, disabled: opts.disabled, "aria-label": opts.aria, id: opts.id }, label);
}

function note(kind, ...text) {
  return h("p", { class: `note ${kind}`, role: kind === "error" ? "alert" : undefined }, ...text);
}

function video(stream, opts = {}) {
  const v = h("video", { autoplay: true, muted: true, playsinline: true, class: opts.class || "" });
  v.muted = true;
  if (stream) v.srcObject = stream;
  return v;
}

function card(title, ...body) {
  return h("section", { class: "card" }, h("h1", null, title), ...body);
}

function later(fn, ms) {
  const t = setTimeout(fn, ms);
  S.timers.push(t);
  return t;
}

// --- the stage bar -------------------------------------------------------------------------------

const STEPS = [
  ["device", "设备准备", "Devices"],
  ["login", "人脸识别", "Face check"],
  ["binding", "佐证绑定", "Phone camera"],
  ["lot", "抽取顺序号", "Lot"],
  ["attachments", "阅读附件", "Attachments"],
  ["enter", "入场", "Enter"],
  ["confirm", "设备确认", "Device confirm"],
  ["answer", "开始答题", "Answering"],
  ["finish", "交卷", "Submit"],
];
const VIEW_STEP = {
  device: "device", login: "login", binding: "binding", lot: "lot", attachments: "attachments",
  enter: "enter", share: "enter", resume: "enter", confirm: "confirm", waiting: "answer",
  answering: "answer", uploads: "finish", absent: "enter",
};

function renderSteps() {
  const current = STEPS.findIndex(([k]) => k === VIEW_STEP[S.view]);
  const ol = clear($("#steps"));
  STEPS.forEach(([, zh, en], i) => {
    // Labels are drawn by CSS (data-label) so they never collide with the buttons' names.
    ol.append(h("li", { class: i < current ? "done" : i === current ? "current" : "", "data-label": `${i + 1} ${L(zh, en)}` }));
  });
}

function renderTop() {
  $("#lang").textContent = currentLang() === "en" ? "中文" : "English";
  $("#brand-name").textContent = L("考试客户端", "Exam client");
  const title = S.state && S.state.exam ? S.state.exam.title : "";
  $("#brand-exam").textContent = title;
  $("#brand-exam").title = title;
  const left = clear($("#top-left"));
  // Only once the questions are out (T): before that the button could only say "not yet".
  if (["waiting", "answering"].includes(S.view) && questionsOut()) {
    left.append(button(L("获取试题", "Get questions"), () => loadQuestions(true), { class: "secondary", aria: "获取试题" }));
  }
  const help = clear($("#top-help"));
  if (S.token && S.state && !["device", "login"].includes(S.view)) {
    const badge = S.help.unread ? h("span", { class: "badge" }, String(S.help.unread)) : null;
    help.append(h("button", { type: "button", class: "secondary", "aria-label": "求助", onclick: openHelp }, L("求助", "Help"), badge));
  }
  renderSteps();
  renderNet();
}

function questionsOut() {
  return !!S.questions || (!!S.state && until(S.state.schedule.starts_at) <= 0);
}

function renderNet() {
  const net = $("#net");
  const online = navigator.onLine && (!S.engine || S.engine.online);
  net.textContent = online ? L("网络正常", "Online") : L("网络已断开", "Offline");
  net.className = `net ${online ? "ok" : "bad"}`;
  const banner = $("#banner");
  const backlog = S.engine ? S.engine.backlog() : { chunks: 0, bytes: 0 };
  const recording = S.recorders.webcam || S.recorders.screen;
  let text = "";
  if (!online && recording) {
    text = L(
      "网络已断开。录像仍在继续，并安全保存在本机；网络恢复后会自动补传，请不要关闭或刷新页面。待上传：{n} 段（{b}）",
      "Network lost. Recording goes on and is kept safely on this computer; it uploads by itself when the network is back. Do not close the page. Waiting: {n} chunks ({b})",
      { n: backlog.chunks, b: formatBytes(backlog.bytes) },
    );
  } else if (!online) {
    text = L("网络已断开，请检查网络连接。恢复后页面会自动继续。", "Network lost. Check your connection; the page continues when it is back.");
  } else if (backlog.chunks > 3) {
    text = L("正在补传录像：还有 {n} 段（{b}）待上传。", "Catching up: {n} chunks ({b}) to upload.", { n: backlog.chunks, b: formatBytes(backlog.bytes) });
  } else if (S.screenLost && S.view !== "share") {
    text = L("屏幕共享已停止，请点击【重新共享屏幕】。", "Screen sharing stopped: click Share again.");
  }
  banner.hidden = !text;
  banner.className = `banner ${online ? "info" : "warn"}`;
  clear(banner).append(text);
  if (S.screenLost && S.view !== "share" && text) {
    banner.append(" ", button(L("重新共享屏幕", "Share again"), () => shareScreen(S.view), { class: "small" }));
  }
  const backlogEl = $("#backlog");
  if (backlogEl) backlogEl.textContent = backlogText();
}

function backlogText() {
  if (!S.engine) return "";
  const b = S.engine.backlog();
  return b.chunks
    ? L("本机待上传：{n} 段（{b}）", "Waiting on this computer: {n} chunks ({b})", { n: b.chunks, b: formatBytes(b.bytes) })
    : L("录像已全部上传到服务器", "All recorded video is on the server");
}

// --- views ---------------------------------------------------------------------------------------

const VIEWS = {};

function show(view, arg) {
  if (S.view !== view && S.leave) {
    S.leave();
    S.leave = null;
  }
  S.view = view;
  S.viewArg = arg;
  S.tick = null;
  for (const t of S.timers) clearTimeout(t);
  S.timers = [];
  clear(main);
  main.append(VIEWS[view](arg));
  welcomeNote(view);
  renderTop();
  if (S.tick) S.tick();
  document.title = `${L("考试客户端", "Exam client")} · invigil`;
}

// Who just logged in, on the first page after the face login (and its re-renders), so a
// candidate sees at once that the system took them for themselves.
function welcomeNote(view) {
  const w = S.welcome;
  if (!w) return;
  if (w.view === null) w.view = view;
  if (w.view !== view) {
    S.welcome = null;
    return;
  }
  main.prepend(h("p", { class: "note ok welcome", id: "who-logged-in", role: "status" },
    L("已登录：{n}（准考证号 {t}）。如果这不是您本人，请立即点击【求助】。", "Logged in: {n} (admission ticket {t}). If this is not you, click Help now.", { n: w.name, t: w.ticket })));
}

function rerender() {
  if (S.view) show(S.view, S.viewArg);
}

setInterval(() => {
  if (S.tick) S.tick();
}, 250);

// 1 设备准备 ---------------------------------------------------------------------------------------

VIEWS.device = () => {
  const status = h("div", { class: "checks" });
  const preview = video(S.cam, { class: "preview" });
  const camSel = h("select", { id: "camera-select", "aria-label": L("选择摄像头", "Camera") });
  const micSel = h("select", { id: "mic-select", "aria-label": L("选择麦克风", "Microphone") });
  const meter = h("div", { class: "meter", role: "meter", "aria-label": L("麦克风音量", "Microphone level"), "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" }, h("span"));
  const playback = h("div", { class: "playback" });
  const rows = {};
  const row = (key, title) => {
    rows[key] = h("li", { class: "pending" }, h("strong", null, title), h("span", { class: "detail" }, L("检测中…", "Checking…")));
    return rows[key];
  };
  const set = (key, state, text) => {
    rows[key].className = state;
    rows[key].querySelector(".detail").textContent = text;
  };
  const next = button(L("下一步", "Next"), () => {
    emitLater("device_check", S.report);
    show("login");
  }, { class: "primary", aria: "下一步", disabled: true });
  const testBtn = button(L("开始 5 秒测试录制", "Record a 5 s test"), async () => {
    if (!S.cam) return;
    testBtn.disabled = true;
    clear(playback).append(note("info", L("正在录制，请说几句话…", "Recording, say a few words…")));
    try {
      const r = await dev.testRecording(S.cam, 5);
      const v = h("video", { controls: true, src: r.url, class: "preview small", id: "test-playback" });
      clear(playback).append(note("ok", L("录制完成，请播放并确认能看到自己、听到声音。", "Done: play it and check you can see and hear yourself.")), v);
      S.report.test_recording = { bytes: r.size, mime: r.mime };
      v.play().catch(() => {});
    } catch (err) {
      clear(playback).append(note("error", L("测试录制失败：{e}", "Test recording failed: {e}", { e: String(err) })));
    }
    testBtn.disabled = false;
  }, { class: "secondary" });

  const checks = h("ul", { class: "checklist" },
    row("browser", L("浏览器", "Browser")),
    row("camera", L("摄像头", "Camera")),
    row("mic", L("麦克风", "Microphone")),
    row("network", L("网络", "Network")),
    row("battery", L("电量", "Battery")),
    row("screens", L("显示器", "Monitors")),
  );
  status.append(checks);

  async function openDevices(ids) {
    try {
      const stream = await dev.openCamera(ids);
      if (S.cam && S.cam !== stream) S.cam.getTracks().forEach((t) => t.stop());
      S.cam = stream;
      preview.srcObject = stream;
      const vt = stream.getVideoTracks()[0];
      const at = stream.getAudioTracks()[0];
      store.cameraId = vt.getSettings().deviceId;
      store.micId = at ? at.getSettings().deviceId : null;
      save();
      const virt = dev.VIRTUAL_CAMERA.test(vt.label);
      S.report.camera = { label: vt.label.slice(0, 80), virtual: virt, ...pick(vt.getSettings(), ["width", "height", "frameRate"]) };
      set("camera", virt ? "warn" : "ok", virt
        ? L("检测到虚拟摄像头（{l}）。考试必须使用真实摄像头，请在上方选择其他摄像头。", "A virtual camera ({l}) is selected: choose a real camera above.", { l: vt.label })
        : L("正常：{l}", "OK: {l}", { l: vt.label || L("默认摄像头", "default camera") }));
      if (S.meter) S.meter.stop();
      S.meter = new dev.LevelMeter(stream, (level) => {
        meter.firstChild.style.width = `${Math.round(level * 100)}%`;
        meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
      });
      set("mic", at ? "ok" : "bad", at
        ? L("正常：{l}。请说话，音量条应随声音跳动。", "OK: {l}. Speak: the bar should move.", { l: at.label || L("默认麦克风", "default microphone") })
        : L("没有麦克风。请连接麦克风后点击【刷新设备】。", "No microphone: connect one and refresh."));
      S.report.microphone = at ? { label: at.label.slice(0, 80) } : null;
      await fillSelects(camSel, micSel);
      const others = S.report.virtual_cameras.filter((l) => l !== vt.label);
      if (!virt && others.length) {
        set("camera", "warn", L("正常：{l}。注意：本机装有虚拟摄像头软件（{v}），考试中不得使用，请关闭该软件。", "OK: {l}. Note: virtual camera software is installed ({v}); it must not be used, please close it.", { l: vt.label, v: others.join("、") }));
      }
      next.disabled = !at || !S.report.browser_ok;
    } catch (err) {
      set("camera", "bad", cameraError(err));
      set("mic", "bad", L("无法使用麦克风。", "Microphone unavailable."));
      S.report.camera = { error: String(err && err.name) };
    }
  }

  camSel.onchange = () => openDevices({ cameraId: camSel.value, micId: micSel.value });
  micSel.onchange = () => openDevices({ cameraId: camSel.value, micId: micSel.value });

  (async () => {
    const b = dev.browserCheck();
    S.report.browser = { name: b.name, version: b.version, problems: b.problems };
    S.report.browser_ok = b.ok || (b.problems.length === 1 && b.problems[0] === "not_chrome");
    set("browser", b.ok ? "ok" : S.report.browser_ok ? "warn" : "bad", b.ok
      ? L("{n} {v}，支持本考试。", "{n} {v}: supported.", { n: b.name, v: b.version })
      : browserProblem(b));
    await openDevices({ cameraId: store.cameraId, micId: store.micId });
    const ext = dev.secondScreen();
    S.report.extended = ext;
    set("screens", ext ? "warn" : "ok", ext
      ? L("检测到多个显示器。考试时只能使用一个显示器，请断开其他显示器。", "More than one monitor: disconnect the others before the exam.")
      : ext === null ? L("无法检测显示器数量，请确认只连接了一个显示器。", "Cannot detect monitors: make sure only one is connected.") : L("只有一个显示器，正常。", "One monitor: OK."));
    const bat = await dev.battery();
    S.report.battery = bat;
    if (!bat) set("battery", "ok", L("无法读取电量（台式机可忽略）。笔记本请连接电源。", "Battery unknown (fine on a desktop). Plug in a laptop."));
    else if (bat.level < 0.5 && !bat.charging) set("battery", "warn", L("电量 {p}%，且未在充电。请立即连接电源，以免考试中断电。", "Battery {p}% and not charging: plug in now.", { p: Math.round(bat.level * 100) }));
    else set("battery", "ok", L("电量 {p}%{c}。", "Battery {p}%{c}.", { p: Math.round(bat.level * 100), c: bat.charging ? L("，正在充电", ", charging") : "" }));
    const sp = await dev.speedTest();
    S.report.network = sp;
    if (sp.kind === "offline") set("network", "bad", L("无法连接服务器，请检查网络。", "Cannot reach the server: check the network."));
    else if (sp.kind === "upload") set("network", sp.kbps < 1000 ? "warn" : "ok", sp.kbps < 1000
      ? L("上传速度约 {k} kbps，偏慢。考试录像需要至少 1 Mbps，请换用更稳定的网络。", "Upload about {k} kbps: too slow, 1 Mbps needed.", { k: sp.kbps })
      : L("上传速度约 {k} kbps，正常。", "Upload about {k} kbps: OK.", { k: sp.kbps }));
    else set("network", sp.ms > 500 ? "warn" : "ok", L("服务器可以连接，往返延迟约 {m} 毫秒（此服务器未提供上传测速，仅测得延迟）。", "Server reachable, round trip about {m} ms (this server offers no upload test; latency only).", { m: sp.ms }));
  })();

  S.leave = () => {};
  return card(
    L("第一步：检查设备", "Step 1: check your devices"),
    note("info", L("请确认能看到自己的画面、说话时音量条会跳动，并录一段 5 秒的视频回放确认。全部正常后点击【下一步】。", "Check that you see yourself, that the level bar moves when you speak, and play back a 5 s test recording. Then click Next.")),
    h("div", { class: "grid two" },
      h("div", null, preview, h("label", null, L("摄像头", "Camera"), camSel), h("label", null, L("麦克风", "Microphone"), micSel), meter, h("div", { class: "row" }, testBtn), playback),
      status,
    ),
    h("div", { class: "actions" }, next),
  );
};

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function cameraError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError") return L("摄像头权限被拒绝。请点击地址栏左侧的图标，允许使用摄像头和麦克风，然后刷新页面。", "Camera permission denied: allow camera and microphone in the address bar, then reload.");
  if (name === "NotFoundError") return L("没有找到摄像头。请连接摄像头后刷新页面。", "No camera found: connect one and reload.");
  if (name === "NotReadableError") return L("摄像头被其他程序占用。请关闭其他使用摄像头的软件（如会议软件）后刷新页面。", "The camera is in use by another program: close it and reload.");
  return L("无法打开摄像头：{e}", "Cannot open the camera: {e}", { e: String(err) });
}

function browserProblem(b) {
  if (b.problems.includes("not_chrome")) return L("建议使用最新版 Chrome 或 Edge 浏览器参加考试。", "Use the latest Chrome or Edge.");
  if (b.problems.includes("old_chrome")) return L("浏览器版本过旧，请升级到最新版 Chrome。", "Your browser is too old: update Chrome.");
  if (b.problems.includes("insecure")) return L("页面地址不安全（须为 https），请使用考试通知中的正确链接。", "The page is not secure (https needed): use the link from your notice.");
  return L("当前浏览器不支持考试所需功能（{p}），请使用最新版 Chrome。", "This browser lacks what the exam needs ({p}): use the latest Chrome.", { p: b.problems.join(", ") });
}

async function fillSelects(camSel, micSel) {
  const { cameras, mics } = await dev.listDevices();
  const cur = S.cam ? S.cam.getVideoTracks()[0]?.getSettings().deviceId : null;
  const curMic = S.cam ? S.cam.getAudioTracks()[0]?.getSettings().deviceId : null;
  clear(camSel);
  cameras.forEach((d, i) => camSel.append(h("option", { value: d.deviceId, selected: d.deviceId === cur }, (d.label || L("摄像头 {n}", "Camera {n}", { n: i + 1 })) + (dev.VIRTUAL_CAMERA.test(d.label) ? L("（虚拟摄像头）", " (virtual)") : ""))));
  clear(micSel);
  mics.forEach((d, i) => micSel.append(h("option", { value: d.deviceId, selected: d.deviceId === curMic }, d.label || L("麦克风 {n}", "Microphone {n}", { n: i + 1 }))));
  const virtual = cameras.filter((d) => dev.VIRTUAL_CAMERA.test(d.label)).map((d) => d.label);
  S.report.virtual_cameras = virtual;
}

// Events before login wait in the queue; they go out once a token exists.
function emitLater(kind, data) {
  emit(kind, data);
}

// 2 人脸登录 ---------------------------------------------------------------------------------------

VIEWS.login = () => {
  const preview = video(S.cam, { class: "preview" });
  const ticket = h("input", { id: "ticket", name: "ticket", autocomplete: "off", inputmode: "numeric", value: store.ticket || "", required: true });
  const msg = h("div", { id: "login-message", "aria-live": "assertive" });
  if (S.loginMessage) msg.append(S.loginMessage);
  const shot = h("div", { class: "shot" });
  const go = button(L("人脸登录", "Log in with face"), doLogin, { class: "primary", aria: "人脸登录" });
  const helpBox = h("div", { id: "login-help" });
  // A choice made on this page is the person's at the computer, recorded for the ticket they
  // log in with; one carried from an earlier visit holds for that visit's ticket only.
  if (!S.consent) {
    const fc = store.faceConsent;
    S.consent = fc ? { given: fc.consent, ticket: fc.ticket } : { given: null, ticket: null };
  }
  const consent = consentPanel(S.consent, {
    api,
    examId,
    onAgree: () => {
      S.consent = Object.assign(S.consent, { given: true, ticket: null });
      consent.draw();
      clear(msg);
      if (S.pendingLogin) {
        // 人脸登录 was clicked before the choice: carry on with it now.
        S.pendingLogin = false;
        doLogin();
      }
    },
    onDecline: () => {
      S.consent = Object.assign(S.consent, { given: false, ticket: null });
      S.pendingLogin = false;
      S.lastFace = null; // a capture taken before must not reach anyone now
      clear(shot);
      drawChoice();
    },
    onReconsider: () => {
      S.consent = Object.assign(S.consent, { given: null, ticket: null });
      drawChoice();
    },
  });
  function drawChoice() {
    consent.draw();
    go.hidden = S.consent.given === false;
    clear(msg);
    if (S.consent.given === false) askTechSupport(helpBox, { declined: true });
    else if (S.loginFailures >= 3) showLoginHelp(helpBox);
    else clear(helpBox);
  }
  go.hidden = S.consent.given === false;
  ticket.addEventListener("input", () => {
    // Someone else at this computer: the consent of the ticket before is not theirs.
    if (S.consent.ticket && ticket.value.trim() !== S.consent.ticket) {
      S.consent = Object.assign(S.consent, { given: null, ticket: null });
      drawChoice();
    }
  });
  if (!S.cam) {
    dev.openCamera({ cameraId: store.cameraId, micId: store.micId }).then((stream) => {
      S.cam = stream;
      preview.srcObject = stream;
    }, (err) => clear(msg).append(note("error", cameraError(err))));
  }

  async function doLogin() {
    const t = ticket.value.trim();
    if (!t) {
      clear(msg).append(note("error", L("请先输入准考证号。", "Enter your admission ticket number first.")));
      ticket.focus();
      return;
    }
    if (S.consent.given !== true) {
      S.pendingLogin = S.consent.given === null;
      clear(msg).append(note("error", L("拍照前请先阅读上方的人脸识别告知并作出选择。", "Before any photo is taken, read the face recognition notice above and choose.")));
      consent.el.classList.add("attention");
      consent.el.scrollIntoView({ block: "nearest" });
      return;
    }
    go.disabled = true;
    const fc = store.faceConsent;
    if (!fc || fc.ticket !== t || fc.consent !== true) {
      try {
        await recordConsent(api, examId, t, true);
      } catch (err) {
        return refused(err);
      }
      store.faceConsent = { ticket: t, consent: true };
      save();
    }
    if (!S.cam) {
      try {
        S.cam = await dev.openCamera({ cameraId: store.cameraId, micId: store.micId });
        preview.srcObject = S.cam;
        await new Promise((r) => setTimeout(r, 500));
      } catch (err) {
        go.disabled = false;
        clear(msg).append(note("error", cameraError(err)));
        return;
      }
    }
    clear(msg).append(note("info", L("正在核验，请保持不动…", "Checking, hold still…")));
    await firstFrame(preview, 5000);
    // From the camera track itself: the preview may be scrolled out of view (and paused).
    const jpeg = await trackSnapshotJpeg(S.cam.getVideoTracks()[0], 800, 0.9);
    if (!jpeg) {
      clear(msg).append(note("error", L("摄像头还没有画面，请稍等一秒再试。", "The camera shows nothing yet: wait a second and retry.")));
      go.disabled = false;
      return;
    }
    S.lastFace = jpeg;
    clear(shot).append(h("img", { src: URL.createObjectURL(jpeg), alt: L("本次拍摄的照片", "The photo taken") }));
    const form = new FormData();
    form.append("exam_id", examId);
    form.append("ticket", t);
    form.append("face", jpeg, "face.jpg");
    store.ticket = t;
    save();
    try {
      // With liveness required the head-turn challenge runs first (./liveness.js).
      await addLiveness(form, { api, examId, ticket: t, track: S.cam.getVideoTracks()[0], box: msg });
      // The old token (if any) lets the server hand the session to this page at once.
      const r = await api.request("POST", "/api/v1/candidate/login", { form, token: S.token || store.token || null });
      await loggedIn(r);
    } catch (err) {
      refused(err);
    }
  }

  function refused(err) {
    go.disabled = false;
    if (!(err instanceof ApiError)) throw err;
    if (!["network", "login_not_open", "unknown_exam", "exam_over"].includes(err.code)) S.loginFailures += 1;
    clear(msg).append(note("error", loginError(err)));
    if (S.loginFailures >= 3) showLoginHelp(helpBox);
  }
  ticket.addEventListener("keydown", (e) => e.key === "Enter" && doLogin());
  if (S.consent.given === false) askTechSupport(helpBox, { declined: true });
  else if (S.loginFailures >= 3) showLoginHelp(helpBox);

  return card(
    L("第二步：人脸识别登录", "Step 2: face check and login"),
    consent.el,
    note("info", L("请输入准考证号，把脸放在框内、正对摄像头，然后点击【人脸登录】。系统会把这张照片与您的报名照片比对。", "Enter your ticket number, put your face in the frame facing the camera, then click Log in.")),
    h("div", { class: "grid two" },
      h("div", { class: "face-guide" }, preview, h("div", { class: "oval", "aria-hidden": "true" }), h("p", { class: "guide-text" }, L("请把脸放在椭圆框内", "Face inside the oval"))),
      h("div", null,
        // zh-CN keeps the contract's label 准考证号; English reads as English.
        h("label", { for: "ticket" }, L("准考证号", "Admission ticket number")),
        ticket,
        h("p", { class: "hint" }, L("准考证号在您的准考证上。", "The number on your admission ticket.")),
        h("div", { class: "actions" }, go),
        msg,
        shot,
        helpBox,
      ),
    ),
  );
};

/** Resolves once the video shows a picture (or after `ms`). */
function firstFrame(v, ms) {
  if (v.videoWidth && v.readyState >= 2) return Promise.resolve(true);
  v.play().catch(() => {});
  return new Promise((resolve) => {
    const done = (ok) => {
      clearTimeout(timer);
      v.removeEventListener("loadeddata", onData);
      resolve(ok);
    };
    const onData = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    v.addEventListener("loadeddata", onData);
  });
}

function loginError(err) {
  const b = err.body || {};
  switch (err.code) {
    case "network": return L("无法连接服务器。请检查网络后再点击【人脸登录】。", "Cannot reach the server: check the network and retry.");
    case "login_not_open": return L("登录尚未开放，将于 {t} 开放。请到时再点击【人脸登录】。", "Login opens at {t}.", { t: at(b.opens_at) });
    case "unknown_candidate": return L("没有找到这个准考证号。请核对准考证上的号码后重新输入。", "This ticket number is not on the list: check it and retry.");
    case "unknown_exam": return L("找不到这场考试。请确认打开的是考试通知中的完整链接。", "Exam not found: open the full link from your notice.");
    case "face_mismatch": return L("照片与报名照片不一致。请正对摄像头，摘下帽子、口罩和眼镜，保证脸部光线充足，再试一次。", "The photo does not match your enrolment photo. Face the camera, remove hat, mask and glasses, get good light, and retry.");
    case "no_face": return L("没有检测到人脸。请靠近摄像头，让整张脸在框内且光线充足，再试一次。", "No face found: come closer, face inside the frame, good light.");
    case "multiple_faces": return L("画面中有不止一张人脸。请确保镜头前只有您本人，再试一次。", "More than one face: only you may be in view.");
    case "bad_image": return L("照片无法识别。请稍等摄像头画面清晰后再试。", "The photo could not be read: wait for a clear picture and retry.");
    case "session_active_elsewhere": return L("您的账号正在另一台设备上使用。请先关闭另一台设备上的考试页面，约 20 秒后再试。", "Your account is in use on another device: close that page, wait 20 seconds and retry.");
    case "exam_over": return L("本场考试已结束，无法登录。", "This exam is over.");
    case "too_many_attempts": return L("尝试次数过多，请等几分钟再试，或点击【求助】联系技术服务。", "Too many attempts: wait a few minutes or ask for help.");
    case "not_enrolled": return L("系统中没有您的报名照片，无法比对。请点击【求助】联系技术服务。", "No enrolment photo on file: ask tech support.");
    default: return livenessError(err) || err.message || err.code;
  }
}

function showLoginHelp(box) {
  clear(box).append(
    h("div", { class: "help-box" },
      h("p", null, L("已连续多次未通过人脸识别。", "Face check failed several times.")),
      button(L("求助", "Help"), () => askTechSupport(box), { class: "secondary", aria: "求助" }),
    ),
  );
}

// After repeated failures the candidate asks tech support, who compare the last capture with
// the enrolment photo and let them in by hand; the page waits for the decision.
function askTechSupport(box, { declined = false } = {}) {
  const text = h("textarea", { id: "login-help-text", rows: 3, maxlength: 1000, "aria-label": L("说明", "Message") });
  const msg = h("div", { "aria-live": "polite" });
  const send = button(L("提交求助", "Send to tech support"), submit, { class: "primary" });
  clear(box).append(h("div", { class: "help-box", id: declined ? "manual-check" : undefined },
    h("h2", null, declined ? L("申请人工核验身份", "Ask for a manual identity check") : L("联系技术服务", "Contact tech support")),
    declined
      ? h("p", null, L("技术服务人员将不使用人脸识别，人工核验您的身份（例如电话或视频核对身份证件）。请填写上方的准考证号，可简单说明情况，然后点击【提交求助】，并保持本页面打开。", "Tech support will check who you are by hand, without face recognition (for example by phone or video with your ID card). Fill in your ticket number above, add a note if you like, click Send and keep this page open."))
      : h("p", null, L("技术服务人员将把您刚才拍摄的照片与报名照片人工比对。请简单说明情况（可不填），然后点击【提交求助】，并保持本页面打开。", "Tech support will compare your last photo with your enrolment photo by hand. Describe the problem (optional), click Send and keep this page open.")),
    declined ? null : h("p", null, L("常见原因：光线太暗或背光、戴了帽子或口罩、离摄像头太远。", "Common causes: poor or back light, hat or mask, too far from the camera.")),
    text, h("div", { class: "actions" }, send), msg));

  async function submit() {
    const ticket = ($("#ticket") && $("#ticket").value.trim()) || store.ticket;
    if (!ticket) {
      clear(msg).append(note("error", L("请先输入准考证号。", "Enter your ticket number first.")));
      return;
    }
    store.ticket = ticket;
    save();
    const form = new FormData();
    form.append("exam_id", examId);
    form.append("ticket", ticket);
    form.append("text", text.value.trim());
    if (S.lastFace && !declined) form.append("face", S.lastFace, "face.jpg");
    send.disabled = true;
    try {
      if (declined) {
        // The refusal goes into the candidate's log first; the server then takes the request
        // without failed face logins and keeps any face out of it.
        const fc = store.faceConsent;
        if (!fc || fc.ticket !== ticket || fc.consent !== false) {
          await recordConsent(api, examId, ticket, false);
          store.faceConsent = { ticket, consent: false };
          save();
        }
      }
      const r = await api.request("POST", "/api/v1/candidate/login-help", { form, token: null });
      clear(msg).append(note("info", L("已提交，正在等待技术服务审核，请不要关闭本页面…", "Sent. Waiting for tech support; keep this page open…")));
      waitForDecision(r.request_id, r.poll_token, msg, send);
    } catch (err) {
      send.disabled = false;
      clear(msg).append(note("error", err instanceof ApiError ? loginError(err) : String(err)));
    }
  }
}

async function waitForDecision(id, poll, msg, send) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 3000));
    let r;
    try {
      r = await api.request("GET", `/api/v1/candidate/login-help/${encodeURIComponent(id)}?poll=${encodeURIComponent(poll)}`, { token: null });
    } catch (err) {
      if (err instanceof ApiError && err.code !== "network") {
        clear(msg).append(note("error", err.message));
        send.disabled = false;
        return;
      }
      continue; // offline for a moment: keep waiting
    }
    if (r.status === "rejected") {
      clear(msg).append(note("error", L("技术服务未通过：", "Tech support declined: "), r.reason || ""));
      send.disabled = false;
      return;
    }
    if (r.status === "approved" && r.token) {
      await loggedIn(r);
      return;
    }
  }
}

// Proctor warnings: shown on every stage until the candidate acknowledges each one.
function showWarnings(list) {
  if (!Array.isArray(list)) return;
  let box = $("#warnings");
  if (!box) {
    box = h("div", { id: "warnings" });
    document.body.prepend(box);
  }
  clear(box);
  for (const w of list.filter((x) => x.seq > (store.warningsSeen || 0))) {
    box.append(h("div", { class: "banner warn", role: "alert" },
      L("监考员提醒：", "Warning from the proctor: "), w.text, " ",
      button(L("知道了", "Got it"), () => {
        store.warningsSeen = Math.max(store.warningsSeen || 0, w.seq);
        save();
        showWarnings(list);
      }, { class: "secondary" })));
  }
}

async function loggedIn(r) {
  const previousAttempt = store.attemptId;
  S.token = r.token;
  store.token = r.token;
  store.attemptId = r.attempt_id;
  if (previousAttempt && previousAttempt !== r.attempt_id) {
    // Another candidate used this computer before: their page flags do not apply.
    for (const k of ["confirmed", "bindingSeen", "finishing"]) delete store[k];
  }
  save();
  S.loginMessage = null;
  S.loginFailures = 0;
  await afterToken();
  S.welcome = { name: S.state.candidate.name, ticket: S.state.candidate.ticket, view: null };
  if (S.resumeView && (S.recorders.webcam || S.recorders.screen)) {
    const v = S.resumeView;
    S.resumeView = null;
    if (S.engine) S.engine.resume();
    show(v);
    return;
  }
  route();
}

// What every page with a token needs: state, time, uploads, events, heartbeat.
async function afterToken() {
  await refreshState();
  events.start();
  await ensureEngine();
  startHeartbeat();
}

async function ensureEngine() {
  if (S.engine) {
    S.engine.resume();
    return;
  }
  S.engine = new UploadEngine({
    api,
    owner: S.state.attempt_id,
    onChange: () => {
      renderNet();
      if (S.view === "uploads" && S.tick) S.tick();
    },
    onProblem: (p) => {
      S.problems.push(p);
      emit("client_error", { where: "upload", ...p });
    },
    onAuthLost: () => {},
  });
  await S.engine.open();
}

async function refreshState() {
  const t0 = performance.now();
  const st = await api.get("/api/v1/candidate/state");
  S.clock.observe(st.now, t0, performance.now());
  S.state = st;
  showWarnings(st.warnings);
  return st;
}

let heartbeatTimer = null;
function startHeartbeat() {
  if (heartbeatTimer) return;
  const beat = async () => {
    if (!S.token) return;
    const t0 = performance.now();
    try {
      const r = await api.post("/api/v1/candidate/heartbeat");
      S.clock.observe(r.now, t0, performance.now());
      showWarnings(r.warnings);
      onServerStage(r.stage);
    } catch {
      /* offline: the banner says so; 401 is handled by sessionLost */
    }
    renderNet();
  };
  heartbeatTimer = setInterval(beat, HEARTBEAT_MS);
}

function onServerStage(stage) {
  if (!S.state || S.finishing) return;
  if (stage === "finished" && (S.recorders.webcam || S.recorders.screen)) {
    finish("deadline");
  } else if (stage !== S.state.stage && ["lot", "attachments", "enter", "absent"].includes(S.view)) {
    refreshState().then(() => {
      if (stage === "absent" || (S.view === "lot" && stage === "attachments" && S.state.lot === null)) route();
      else rerender();
    }).catch(() => {});
  }
}

function sessionLost(err) {
  if (!S.token) return;
  S.token = null;
  const replaced = err.code === "session_revoked" && err.body.reason === "replaced";
  S.loginMessage = note("error", replaced
    ? L("您已在其他设备登录，本页面的登录已失效。如需在本机继续，请重新人脸登录。", "You logged in on another device; this page was signed out. Log in again to continue here.")
    : L("登录已失效，请重新人脸登录。正在进行的录像不会中断，也不会丢失。", "Your login expired: log in again. Recording continues and nothing is lost."));
  if (S.view && S.view !== "login" && S.view !== "device") S.resumeView = S.view;
  show("login");
}

// 3 佐证绑定 ---------------------------------------------------------------------------------------

function evidenceRequired() {
  return S.state && S.state.exam.evidence_camera === "required";
}

function evidenceStatusText(ev) {
  const status = ev ? ev.status : "not_bound";
  return {
    not_bound: L("手机尚未绑定", "Phone not bound"),
    bound: L("手机已绑定，请在手机上开始环拍", "Phone bound: start the room sweep on the phone"),
    sweeping: L("手机正在环拍房间", "Phone is sweeping the room"),
    placing: L("手机已完成环拍，正在摆放机位：请确认下方画面", "Phone swept the room and is being placed: check its picture"),
    recording: L("手机正在录制", "Phone is recording"),
    offline: L("手机已离线，请检查手机网络", "Phone offline: check its network"),
    stopped: L("手机已结束录制", "Phone stopped recording"),
  }[status] || status;
}

VIEWS.binding = () => {
  const qr = h("div", { class: "qr", id: "qr" }, L("正在生成二维码…", "Making the QR code…"));
  const code = h("div", { class: "code", id: "binding-code" });
  const status = h("p", { class: "phone-status", id: "phone-status", role: "status" }, evidenceStatusText(S.state.evidence));
  const msg = h("div");
  const placement = placementPanel(api, (iso) => at(iso, true));
  placement.update(S.state.evidence);
  async function offer() {
    try {
      const r = await api.post("/api/v1/candidate/binding");
      // Shown as an image (never parsed into the page); an inline SVG may lack its namespace.
      let svg = String(r.qr_svg || "");
      if (!/xmlns=/.test(svg)) svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
      const img = h("img", { alt: L("手机扫码绑定", "Scan with the phone"), src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg) });
      clear(qr).append(img);
      clear(code).append(h("span", { class: "label" }, L("绑定码", "Binding code")), h("strong", null, r.code));
      clear(msg).append(note("info", L("二维码和绑定码在 {t} 前有效；过期后点击【换一个绑定码】。", "Valid until {t}; then get a new code.", { t: at(r.expires_at) })));
    } catch (err) {
      clear(qr);
      clear(msg).append(note("error", err.status === 404 || err.status === 405
        ? L("此服务器暂不支持手机绑定，请联系技术服务。", "This server cannot bind phones yet: contact tech support.")
        : L("无法生成二维码：{m}", "Cannot make the QR code: {m}", { m: err.message })));
    }
  }
  offer();
  const poll = async () => {
    try {
      await refreshState();
      status.textContent = evidenceStatusText(S.state.evidence);
      placement.update(S.state.evidence);
    } catch {
      /* offline */
    }
    later(poll, 3000);
  };
  later(poll, 3000);
  return card(
    L("第三步：绑定手机佐证摄像头", "Step 3: bind the phone camera"),
    note("info", L("用手机相机扫描下方二维码（或在手机上打开考试手机页面并输入绑定码），按手机上的提示环拍房间，然后把手机放在身体侧后方约 45°、能拍到您和电脑屏幕的位置，开始录制。", "Scan the QR code with the phone camera (or type the binding code on the phone page), sweep the room as the phone guides you, then place the phone behind you at about 45° so it sees you and the screen, and start recording.")),
    placement.el,
    h("div", { class: "grid two" }, h("div", null, qr), h("div", null, code, status, msg,
      h("div", { class: "actions" },
        button(L("换一个绑定码", "New code"), offer, { class: "secondary" }),
        button(L("下一步", "Next"), () => {
          store.bindingSeen = true;
          save();
          route();
        }, { class: "primary", aria: "下一步" })))),
  );
};

// 4 抽签 ------------------------------------------------------------------------------------------

VIEWS.lot = () => {
  const st = S.state;
  const msg = h("div");
  const number = h("div", { class: "lot-number", id: "lot-number", "aria-live": "polite" }, st.lot === null ? "?" : String(st.lot));
  const draw = button(L("抽签", "Draw"), async () => {
    draw.disabled = true;
    try {
      const r = await api.post("/api/v1/candidate/lot");
      S.state.lot = r.number;
      rerender();
    } catch (err) {
      draw.disabled = false;
      clear(msg).append(note("error", err.offline ? L("网络不通，请稍后再点【抽签】。", "No network: try again.") : err.message));
    }
  }, { class: "primary big", aria: "抽签" });
  const next = button(L("下一步", "Next"), async () => {
    await refreshState();
    route();
  }, { class: "primary", aria: "下一步" });
  return card(
    L("第四步：抽取面试顺序号", "Step 4: draw your number"),
    st.lot === null
      ? note("info", L("点击【抽签】获得您在本考场的顺序号。如未在 {t} 前抽取，系统将自动为您分配。", "Click Draw to get your number in this room. If you do not draw before {t}, one is assigned for you.", { t: at(st.schedule.lot_closes_at) }))
      : note("ok", L("这是您的顺序号，请记住它。点击【下一步】继续。", "This is your number: remember it. Click Next.")),
    h("div", { class: "lot" }, h("span", { class: "label" }, L("您的顺序号", "Your number")), number),
    msg,
    h("div", { class: "actions" }, st.lot === null ? draw : next),
  );
};

// 5 阅读考试附件 -----------------------------------------------------------------------------------

const blobUrls = new Map();

async function attachmentView(a) {
  const box = h("div", { class: "viewer" }, L("正在打开…", "Opening…"));
  try {
    const res = await api.request("GET", a.url, { raw: true });
    const type = (a.content_type || res.headers.get("content-type") || "").toLowerCase();
    if (type.startsWith("text/")) {
      const text = await res.text();
      clear(box).append(h("pre", { class: "text-file" }, text));
    } else {
      const blob = await res.blob();
      const url = blobUrls.get(a.id) || URL.createObjectURL(new Blob([blob], { type: type || blob.type }));
      blobUrls.set(a.id, url);
      if (type.startsWith("image/")) clear(box).append(h("img", { src: url, alt: a.title }));
      else if (type.includes("pdf")) clear(box).append(h("iframe", { src: url, title: a.title, class: "pdf" }));
      else clear(box).append(h("embed", { src: url, type, title: a.title }), h("p", null, h("a", { href: url, download: a.title }, L("无法在页面中显示，点此下载查看", "Cannot be shown here: download it"))));
    }
  } catch (err) {
    clear(box).append(note("error", L("附件打开失败：{m}。请点击【刷新附件】重试。", "Could not open: {m}.", { m: err.message })));
  }
  return box;
}

VIEWS.attachments = () => {
  const st = S.state;
  const list = h("div", { class: "attachments" });
  for (const a of st.attachments) {
    const viewerSlot = h("div");
    attachmentView(a).then((el) => viewerSlot.append(el));
    const ack = button(a.read ? L("已确认", "Confirmed") : L("已阅", "Read"), async () => {
      ack.disabled = true;
      try {
        await api.post(`/api/v1/candidate/attachments/${a.id}/read`);
        a.read = true;
        ack.textContent = L("已确认", "Confirmed");
        ack.removeAttribute("aria-label");
        item.classList.add("read");
        updateNext();
      } catch (err) {
        ack.disabled = false;
        item.append(note("error", err.offline ? L("网络不通，请稍后再点【已阅】。", "No network: retry.") : err.message));
      }
    }, { class: a.read ? "secondary" : "primary", aria: a.read ? undefined : "已阅", disabled: a.read });
    const item = h("article", { class: `attachment ${a.read ? "read" : ""}`, "data-attachment": a.id },
      h("h2", null, a.title), viewerSlot, h("div", { class: "actions" }, ack));
    list.append(item);
  }
  const next = button(L("下一步", "Next"), async () => {
    await refreshState();
    route();
  }, { class: "primary", aria: "下一步" });
  const remain = h("p", { class: "hint" });
  function updateNext() {
    const left = st.attachments.filter((a) => !a.read).length;
    next.disabled = left > 0;
    remain.textContent = left ? L("还有 {n} 个附件未确认。", "{n} attachment(s) left.", { n: left }) : L("全部附件已确认，请点击【下一步】。", "All confirmed: click Next.");
  }
  updateNext();
  return card(
    L("第五步：阅读考试附件", "Step 5: read the attachments"),
    note("info", L("请逐一阅读下列文件，读完一个点击它下方的【已阅】。全部确认后才能进入考试。", "Read each file and click Read under it. All must be confirmed before entering.")),
    list,
    h("div", { class: "actions" }, remain, next),
  );
};

// 6 进入考试 ---------------------------------------------------------------------------------------

VIEWS.enter = (message) => {
  const st = S.state;
  const sch = st.schedule;
  const state = h("p", { class: "enter-state", id: "enter-state", role: "status" });
  const msg = h("div", { id: "enter-message" }, message || null);
  const evidence = evidenceRequired() ? h("p", { class: "phone-status" }, L("手机佐证：", "Phone camera: "), evidenceStatusText(st.evidence)) : null;
  const enterBtn = button(L("进入考试", "Enter the exam"), doEnter, { class: "primary big", aria: "进入考试", disabled: true });
  const refresh = button(L("刷新", "Refresh"), async () => {
    refresh.disabled = true;
    try {
      await S.clock.sync(api);
      await refreshState();
      if (S.state.stage !== "enter") return route();
      rerender();
    } catch (err) {
      clear(msg).append(note("error", err.offline ? L("网络不通，请检查网络后再点【刷新】。", "No network.") : err.message));
    }
    refresh.disabled = false;
  }, { class: "secondary", aria: "刷新" });

  S.tick = () => {
    const opensIn = until(sch.entry_opens_at);
    const closesIn = until(sch.entry_closes_at);
    const ev = S.state.evidence;
    const phoneOk = !evidenceRequired() || (ev && ev.status === "recording");
    if (closesIn <= 0) {
      state.textContent = L("入场时间已于 {t} 结束，您已不能进入本场考试（按缺考处理）。如有疑问请联系监考员。", "Entry closed at {t}; you can no longer enter (counted absent).", { t: at(sch.entry_closes_at) });
      state.className = "enter-state error";
      enterBtn.disabled = true;
    } else if (opensIn > 0) {
      state.textContent = L("【进入考试】将于 {t} 开放（还有 {c}）。请耐心等候，到时按钮会自动变为可点击，也可点击【刷新】。", "Entry opens at {t} (in {c}). The button activates by itself; you can also click Refresh.", { t: at(sch.entry_opens_at), c: countdown(opensIn) });
      state.className = "enter-state";
      enterBtn.disabled = true;
    } else if (!phoneOk) {
      state.textContent = L("入场已开放，但手机佐证摄像头尚未开始录制。请先在手机上完成绑定并开始录制。", "Entry is open, but the phone camera is not recording yet.");
      state.className = "enter-state warn";
      enterBtn.disabled = true;
    } else {
      state.textContent = L("入场已开放，请在 {t} 前点击【进入考试】。进入后需要共享整个屏幕，并开始录像。", "Entry is open until {t}. After entering you share your entire screen and recording starts.", { t: at(sch.entry_closes_at) });
      state.className = "enter-state ok";
      enterBtn.disabled = S.entering === true;
    }
  };
  if (evidenceRequired()) {
    const poll = async () => {
      try {
        await refreshState();
        if (evidence) evidence.lastChild.textContent = evidenceStatusText(S.state.evidence);
      } catch {
        /* offline */
      }
      later(poll, 5000);
    };
    later(poll, 5000);
  }

  async function doEnter() {
    S.entering = true;
    enterBtn.disabled = true;
    // Full screen needs the click itself; ask before anything is awaited.
    if (document.documentElement.requestFullscreen && !document.fullscreenElement) {
      document.documentElement.requestFullscreen().catch(() => {});
    }
    try {
      await api.post("/api/v1/candidate/enter");
    } catch (err) {
      S.entering = false;
      clear(msg).append(note("error", enterError(err)));
      if (err.code === "attachments_unread" || err.code === "already_finished") {
        await refreshState();
        return route();
      }
      return;
    }
    S.entering = false;
    await refreshState();
    await startExamMedia("confirm");
  }

  return card(
    L("第六步：入场", "Step 6: enter"),
    h("dl", { class: "schedule" },
      h("dt", null, L("入场开放", "Entry opens")), h("dd", null, at(sch.entry_opens_at)),
      h("dt", null, L("开考时间", "Exam starts")), h("dd", null, at(sch.starts_at)),
      h("dt", null, L("入场截止", "Entry closes")), h("dd", null, at(sch.entry_closes_at)),
      h("dt", null, L("考试结束", "Exam ends")), h("dd", null, at(sch.deadline)),
    ),
    evidence,
    state,
    msg,
    h("div", { class: "actions" }, refresh, enterBtn),
    evidenceRequired() ? h("p", null, button(L("显示手机绑定二维码", "Show the phone QR code"), () => show("binding"), { class: "link" })) : null,
  );
};

function enterError(err) {
  const b = err.body || {};
  switch (err.code) {
    case "network": return L("网络不通，请检查网络后再试。", "No network: check it and retry.");
    case "entry_not_open": return L("尚未到入场时间，将于 {t} 开放。", "Entry opens at {t}.", { t: at(b.opens_at) });
    case "entry_closed": return L("入场时间已过（开考后 3 分钟内须入场），按缺考处理。如有疑问请联系监考员。", "Entry has closed; you are counted absent.");
    case "attachments_unread": return L("还有考试附件未确认，请先阅读并点击【已阅】。", "Some attachments are not confirmed yet.");
    case "evidence_not_ready": return L("手机佐证摄像头尚未开始录制，请先在手机上开始录制。", "The phone camera is not recording yet.");
    case "already_finished": return L("您已交卷，不能再次进入。", "You have already submitted.");
    default: return err.message || err.code;
  }
}

// Screen share + recording ---------------------------------------------------------------------------

async function askScreen() {
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

VIEWS.share = (arg = {}) => {
  const msg = arg.error === "not_monitor"
    ? note("error", L("您共享的是{s}，不是整个屏幕。考试要求共享【整个屏幕】：请再点一次下方按钮，在弹出的窗口中选择“整个屏幕”标签页，选中屏幕画面后点击“共享”。", "You shared {s}, not the entire screen. Click below again and choose the “Entire screen” tab, select the screen, then Share.", { s: arg.surface === "browser" ? L("一个浏览器标签页", "a browser tab") : arg.surface === "window" ? L("一个窗口", "a window") : L("其他内容", "something else") }))
    : arg.error === "cancelled"
      ? note("error", L("屏幕共享被取消或未获允许。考试必须共享整个屏幕，请点击下方按钮重新选择。", "Screen sharing was cancelled. The exam needs your entire screen: click below to choose again."))
      : arg.error ? note("error", L("无法共享屏幕：{d}", "Cannot share the screen: {d}", { d: arg.detail || arg.error })) : null;
  const go = button(L("共享整个屏幕", "Share entire screen"), () => shareScreen(arg.next || "confirm"), { class: "primary big" });
  return card(
    arg.resume ? L("继续考试", "Continue the exam") : L("共享整个屏幕", "Share your entire screen"),
    arg.resume ? note("info", L("页面曾关闭或刷新，考试录像需要重新开始。之前的录像已保存在本机，正在自动补传。请点击下方按钮，重新共享整个屏幕。", "The page was closed or reloaded: recording must start again. What was recorded before is kept and uploading. Click below to share the entire screen again.")) : null,
    note("info", L("考试全程录制摄像头和整个屏幕。在弹出的窗口中请选择“整个屏幕”，不要选择窗口或标签页。", "The camera and the entire screen are recorded throughout. In the dialog choose “Entire screen”, not a window or tab.")),
    msg,
    h("div", { class: "actions" }, go),
  );
};

VIEWS.resume = () => VIEWS.share({ resume: true, next: S.state.stage === "answering" ? "answering" : store.confirmed ? "waiting" : "confirm" });

async function shareScreen(next) {
  if (document.documentElement.requestFullscreen && !document.fullscreenElement) {
    document.documentElement.requestFullscreen().catch(() => {});
  }
  await startExamMedia(next);
}

async function startExamMedia(next) {
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

function startSignals() {
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

async function startRecorder(kind) {
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

function onRecorderStopped(kind, rec) {
  if (S.finishing || S.recorders[kind] !== rec) return;
  S.recorders[kind] = null;
  if (kind === "screen") {
    S.screenLost = true;
    renderNet();
  } else {
    reopenCamera();
  }
}

function onTrackEnded(kind, track) {
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
async function reopenCamera() {
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
async function switchDevices(ids, fallbackToDefault = false) {
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
function startSnapshots() {
  if (snapshotTimer) return;
  snapshotTimer = setInterval(async () => {
    if (!navigator.onLine || !S.token) return;
    for (const kind of ["webcam", "screen"]) {
      if (!S.recorders[kind]) continue;
      const stream = kind === "webcam" ? S.cam : S.screen;
      const track = stream && stream.getVideoTracks()[0];
      const jpeg = await trackSnapshotJpeg(track, kind === "screen" ? 960 : 640, 0.6);
      if (!jpeg) continue;
      const form = new FormData();
      form.append("kind", kind);
      form.append("image", jpeg, `${kind}.jpg`);
      api.request("POST", "/api/v1/snapshots", { form, timeout: 10000 }).catch(() => {});
    }
  }, SNAPSHOT_MS);
}

// 7 设备确认 ---------------------------------------------------------------------------------------

function recordingStatus() {
  const rows = ["webcam", "screen"].map((kind) => {
    const on = S.recorders[kind] && S.recorders[kind].active;
    return h("li", { class: on ? "ok" : "bad" }, kind === "webcam" ? L("摄像头与麦克风录像", "Camera and microphone") : L("屏幕录像", "Screen"), "：", on ? L("录制中", "recording") : L("未在录制", "not recording"));
  });
  return h("div", { class: "recstatus" }, h("ul", { class: "checklist compact" }, rows), h("p", { class: "hint", id: "backlog" }, backlogText()));
}

VIEWS.confirm = () => {
  const self = video(S.cam, { class: "preview selfview" });
  const scr = video(S.screen, { class: "preview small" });
  const camSel = h("select", { id: "camera-select", "aria-label": L("选择摄像头", "Camera") });
  const micSel = h("select", { id: "mic-select", "aria-label": L("选择麦克风", "Microphone") });
  const meter = h("div", { class: "meter", role: "meter", "aria-label": L("麦克风音量", "Microphone level") }, h("span"));
  const msg = h("div", { id: "confirm-message" });
  fillSelects(camSel, micSel);
  const startMeter = () => {
    if (S.meter) S.meter.stop();
    S.meter = new dev.LevelMeter(S.cam, (level) => (meter.firstChild.style.width = `${Math.round(level * 100)}%`));
  };
  startMeter();
  const change = async () => {
    clear(msg).append(note("info", L("正在切换设备，录像不会中断…", "Switching; recording continues…")));
    try {
      await switchDevices({ cameraId: camSel.value, micId: micSel.value });
      self.srcObject = S.cam;
      startMeter();
      clear(msg).append(note("ok", L("已切换。", "Switched.")));
      rerenderStatus();
    } catch (err) {
      clear(msg).append(note("error", cameraError(err)));
    }
  };
  camSel.onchange = change;
  micSel.onchange = change;
  const statusSlot = h("div", null, recordingStatus());
  const rerenderStatus = () => clear(statusSlot).append(recordingStatus());
  const refreshDevices = button(L("刷新设备", "Refresh devices"), async () => {
    await fillSelects(camSel, micSel);
    if (!S.cam.getTracks().every((t) => t.readyState === "live")) await change();
    rerenderStatus();
    clear(msg).append(note("ok", L("设备列表已更新。", "Device list updated.")));
  }, { class: "secondary", aria: "刷新设备" });
  const go = button(L("进入待考", "Go to waiting room"), () => {
    store.confirmed = true;
    save();
    show(until(S.state.schedule.starts_at) <= 0 ? "answering" : "waiting");
    if (S.view === "answering") loadQuestions();
  }, { class: "primary", aria: "进入待考" });
  S.leave = () => {};
  S.tick = () => {
    if (until(S.state.schedule.starts_at) <= 0 && Date.now() - (S.questionsTriedAt || 0) > 1000) {
      // T has come: the questions appear by themselves even before 【进入待考】 was pressed.
      S.questionsTriedAt = Date.now();
      store.confirmed = true;
      save();
      loadQuestions();
      return;
    }
    const n = Date.now();
    if (!S._lastStatus || n - S._lastStatus > 2000) {
      S._lastStatus = n;
      rerenderStatus();
    }
  };
  return card(
    L("第七步：设备确认", "Step 7: confirm your devices"),
    note("info", L("录像已经开始。请确认画面中能看到您的正脸、说话时音量条会跳动。如需更换摄像头或麦克风，请在下方选择（录像不会中断）；设备插拔后点击【刷新设备】。确认无误后点击【进入待考】。", "Recording has started. Check your face is visible and the level bar moves. Change camera or microphone below (recording continues); after plugging devices click Refresh devices. Then click Go to waiting room.")),
    h("div", { class: "grid two" },
      h("div", null, self, h("label", null, L("摄像头", "Camera"), camSel), h("label", null, L("麦克风", "Microphone"), micSel), meter),
      h("div", null, h("p", { class: "hint" }, L("正在录制的屏幕：", "Screen being recorded:")), scr, statusSlot, msg),
    ),
    h("div", { class: "actions" }, refreshDevices, go),
  );
};

// 8 开始答题 ---------------------------------------------------------------------------------------

function infoPanel() {
  const st = S.state;
  return h("aside", { class: "side" },
    video(S.cam, { class: "preview selfview" }),
    h("dl", { class: "who" },
      h("dt", null, L("姓名", "Name")), h("dd", { id: "who-name" }, st.candidate.name),
      h("dt", null, L("准考证", "Ticket")), h("dd", { id: "who-ticket" }, st.candidate.ticket),
      h("dt", null, L("顺序号", "Number")), h("dd", { id: "who-lot" }, st.lot === null ? "—" : String(st.lot)),
      h("dt", null, L("考场", "Room")), h("dd", null, st.candidate.room.name),
    ),
    h("p", { class: "hint", id: "backlog" }, backlogText()),
    button(L("结束考试", "Finish the exam"), askFinish, { class: "danger", aria: "结束考试" }),
  );
}

VIEWS.waiting = () => {
  const st = S.state;
  const cd = h("div", { class: "countdown big", id: "countdown", role: "timer" });
  const msg = h("div", { id: "questions-message" });
  let fetching = false;
  S.tick = () => {
    const left = until(st.schedule.starts_at);
    cd.textContent = countdown(left);
    if (left <= 0 && !fetching) {
      fetching = true;
      renderTop(); // 获取试题 appears now
      loadQuestions().finally(() => later(() => (fetching = false), 1000));
    }
  };
  return h("div", { class: "exam" },
    h("section", { class: "card main-col" },
      h("h1", null, L("待考", "Waiting")),
      note("info", L("考试将于 {t} 开始。请保持端坐、正对摄像头，试题会在开考时自动显示，无需任何操作。", "The exam starts at {t}. Sit facing the camera; the questions appear by themselves.", { t: at(st.schedule.starts_at, true) })),
      h("p", { class: "hint" }, L("距开考还有", "Starts in")),
      cd,
      msg,
    ),
    infoPanel(),
  );
};

async function loadQuestions(manual = false) {
  const msg = $("#questions-message");
  try {
    const t0 = performance.now();
    const r = await api.get("/api/v1/candidate/questions");
    S.clock.observe(r.now, t0, performance.now());
    S.questions = r;
    S.questionsError = null;
    if (S.view !== "answering") show("answering");
    else rerender();
  } catch (err) {
    S.questionsError = err;
    if (err.code === "not_started") {
      if (msg && manual) clear(msg).append(note("info", L("考试尚未开始，试题将在开考时自动显示。", "Not started yet: the questions appear at the start.")));
      return;
    }
    if (msg) clear(msg).append(note("error", err.offline ? L("网络不通，试题获取失败。录像仍在继续，网络恢复后请点击左上角【获取试题】。", "No network: could not get the questions. Recording continues; click Get questions when back online.") : err.message));
  }
}

function startAnswering() {
  if (S.questions) show("answering");
  else {
    show("answering");
    loadQuestions();
  }
}

VIEWS.answering = () => {
  const st = S.state;
  const q = S.questions;
  const cd = h("div", { class: "countdown", id: "answer-countdown", role: "timer" });
  const deadline = (q && q.deadline) || st.schedule.deadline;
  S.tick = () => {
    const left = until(deadline);
    cd.textContent = countdown(left);
    cd.classList.toggle("urgent", left < 5 * 60000);
    if (left <= 0 && !S.finishing) finish("deadline");
  };
  const list = q
    ? h("ol", { class: "questions", id: "questions" }, q.questions.map((x) => h("li", null, h("p", null, x.text))))
    : h("p", { class: "hint" }, L("正在获取试题…如长时间没有显示，请点击左上角【获取试题】。", "Getting the questions… if they do not appear, click Get questions at the top left."));
  return h("div", { class: "exam" },
    h("section", { class: "card main-col" },
      h("div", { class: "row spread" }, h("h1", null, L("答题中", "Answering")), h("div", null, h("span", { class: "hint" }, L("距考试结束", "Time left")), " ", cd)),
      note("info", L("请按顺序口头作答。每答完一题，请清楚地说「该题回答完毕」，再回答下一题。全部答完后点击【结束考试】。", "Answer aloud, in order. After each answer say clearly 「该题回答完毕」. When done, click Finish.")),
      list,
      h("div", { id: "questions-message" }),
    ),
    infoPanel(),
  );
};

// 9 结束考试 ---------------------------------------------------------------------------------------

function confirmDialog(text, okLabel = "确定", cancelLabel = "取消") {
  return new Promise((resolve) => {
    const root = $("#overlay");
    const close = (v) => {
      clear(root);
      resolve(v);
    };
    const ok = button(L(okLabel, okLabel === "确定" ? "OK" : okLabel), () => close(true), { class: "danger", aria: okLabel });
    const cancel = button(L(cancelLabel, cancelLabel === "取消" ? "Cancel" : cancelLabel), () => close(false), { class: "secondary", aria: cancelLabel });
    clear(root).append(h("div", { class: "backdrop" },
      h("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "dialog-text" },
        h("p", { id: "dialog-text" }, text),
        h("div", { class: "actions" }, cancel, ok))));
    cancel.focus();
  });
}

async function askFinish() {
  const ok = await confirmDialog(L("确认现在交卷吗？交卷后录像停止，不能再回到考试。", "Submit now? Recording stops and you cannot return to the exam."));
  if (ok) finish("candidate");
}

async function finish(reason) {
  if (S.finishing) return;
  S.finishing = true;
  store.finishing = true;
  save();
  if (S.signals) S.signals.stop();
  clearInterval(snapshotTimer);
  snapshotTimer = null;
  show("uploads");
  await Promise.all(Object.values(S.recorders).filter(Boolean).map((r) => r.stop()));
  for (const s of [S.cam, S.screen]) if (s) s.getTracks().forEach((t) => t.stop());
  if (S.meter) S.meter.stop();
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  rerender();
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15000)) {
    try {
      await api.post("/api/v1/candidate/finish", { reason });
      break;
    } catch (err) {
      if (!err.offline && err.status < 500 && err.status !== 401) break; // already finished, or refused for good
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  try {
    await refreshState();
  } catch {
    /* offline */
  }
  events.flush();
  rerender();
}

const KIND_NAME = {
  webcam: () => L("摄像头录像", "Camera recording"),
  screen: () => L("屏幕录像", "Screen recording"),
  evidence: () => L("手机佐证录像", "Phone recording"),
};

VIEWS.uploads = () => {
  const rows = h("div", { class: "uploads", id: "upload-rows" });
  const verdict = h("div", { class: "verdict", id: "upload-verdict", "aria-live": "polite" });
  const serverBox = h("div", { id: "server-uploads" });
  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      S.uploads = await api.get("/api/v1/candidate/uploads");
    } catch (err) {
      if (err.code === "uploads_closed") S.uploads = { closed: true };
    }
    polling = false;
    draw();
  }
  function draw() {
    clear(rows);
    const local = S.engine ? S.engine.summary().filter((s) => s.produced) : [];
    const perKind = {};
    for (const s of local) perKind[s.kind] = (perKind[s.kind] || 0) + 1;
    const seen = {};
    for (const s of local) {
      seen[s.kind] = (seen[s.kind] || 0) + 1;
      // A device change or a reload starts a new recording of the same kind: number them.
      const part = perKind[s.kind] > 1 ? L("（第 {n} 段）", " (part {n})", { n: seen[s.kind] }) : "";
      const pct = s.produced ? Math.round((s.acked / s.produced) * 100) : 100;
      const state = s.error
        ? L("上传出错（{e}），请联系监考员", "Upload error ({e}): tell the proctor", { e: s.error })
        : s.finalized ? L("已完成", "Complete")
          : s.pending ? L("正在上传：{a}/{p} 段，剩余 {b}", "Uploading: {a}/{p} chunks, {b} left", { a: s.acked, p: s.produced, b: formatBytes(s.pendingBytes) })
            : s.stopped ? L("正在确认…", "Confirming…") : L("录制中", "Recording");
      rows.append(h("div", { class: `upload-row ${s.finalized ? "ok" : s.error ? "bad" : ""}`, "data-kind": s.kind },
        h("span", { class: "name" }, KIND_NAME[s.kind] ? KIND_NAME[s.kind]() : s.kind, part),
        h("progress", { max: "100", value: String(s.finalized ? 100 : pct) }),
        h("span", { class: "state" }, state)));
    }
    const up = S.uploads;
    clear(serverBox);
    if (up && up.recordings) {
      const phone = up.recordings.filter((r) => r.kind === "evidence");
      if (evidenceRequired()) {
        const done = phone.length && phone.every((r) => r.state === "finalized");
        serverBox.append(h("div", { class: `upload-row ${done ? "ok" : ""}`, "data-kind": "evidence" },
          h("span", { class: "name" }, KIND_NAME.evidence()),
          h("progress", { max: "100", value: done ? "100" : "0" }),
          h("span", { class: "state" }, done ? L("已完成", "Complete") : phone.length
            ? L("手机正在上传：已收到 {n} 段。请在手机上点击【结束录制】并保持手机联网，直到显示上传完成。", "The phone is uploading ({n} chunks so far). Stop recording on the phone and keep it online until it says done.", { n: phone.reduce((a, r) => a + r.received, 0) })
            : L("尚未收到手机录像。请检查手机是否在录制、是否联网。", "No phone recording received yet: check the phone."))));
      }
    }
    const localDone = !!S.engine && S.engine.allFinalized() && S.engine.backlog().chunks === 0 && !S.engine.summary().some((s) => s.error);
    const serverDone = !!(up && up.complete);
    const stillRecording = Object.values(S.recorders).some((r) => r && r.active);
    clear(verdict);
    if (localDone && serverDone && !stillRecording) {
      verdict.append(
        h("div", { class: "done-banner", role: "status", id: "submit-done" }, "交卷完成"),
        h("p", null, L("全部录像已安全上传，您可以关闭本页面。{t} 前可以随时重新打开本页查看上传状态。", "Everything is uploaded: you may close this page. You can reopen it until {t} to check.", { t: up.uploads_close_at ? at(up.uploads_close_at) : "" })),
      );
      store.done = true;
      save();
    } else if (up && up.closed) {
      verdict.append(note("error", L("上传时间已截止。如仍有未上传的录像，请联系监考员。", "Uploads have closed. If anything is missing, contact the proctor.")));
    } else {
      verdict.append(note(navigator.onLine ? "info" : "error", navigator.onLine
        ? L("正在上传录像，请不要关闭本页面、不要断开网络。上传失败会自动重试。", "Uploading: do not close this page or disconnect. Failures retry by themselves.")
        : L("网络已断开。录像保存在本机，网络恢复后会自动继续上传，请不要关闭本页面。", "Offline: the recordings are kept here and upload when the network is back. Keep the page open.")));
    }
  }
  let lastPoll = 0;
  S.tick = () => {
    const n = Date.now();
    if (n - lastPoll > 3000) {
      lastPoll = n;
      poll();
    }
    draw();
  };
  return card(
    L("交卷与上传", "Submitting and uploading"),
    note("info", L("考试已结束，录像已停止。下面是每路录像的上传进度。", "The exam has ended and recording stopped. Below is each recording's upload progress.")),
    rows,
    serverBox,
    verdict,
  );
};

VIEWS.absent = () => card(
  L("未能入场", "Entry closed"),
  note("error", L("入场时间已于 {t} 结束，您未在规定时间内进入考试，按缺考处理。如有疑问，请联系监考员{p}。", "Entry closed at {t}; you did not enter in time and are counted absent. Contact the proctor{p} if this is wrong.", { t: at(S.state.schedule.entry_closes_at), p: S.state.exam.help_phone ? L("（电话 {n}）", " (phone {n})", { n: S.state.exam.help_phone }) : "" })),
);

VIEWS.error = (text) => card(L("无法打开考试", "Cannot open the exam"), note("error", text));

VIEWS.offline = () => {
  later(boot, 3000);
  return card(L("正在连接服务器", "Connecting"), note("error", L("暂时无法连接服务器，请检查网络。页面会每隔几秒自动重试。", "Cannot reach the server: check the network. Retrying every few seconds.")));
};

// 求助 --------------------------------------------------------------------------------------------

function openHelp() {
  S.help.open = true;
  S.help.unread = 0;
  emit("help_requested", { view: S.view });
  renderHelp();
  pollHelp();
}

async function pollHelp() {
  try {
    const r = await api.get("/api/v1/candidate/help");
    const staffBefore = S.help.messages.filter((m) => m.from === "staff").length;
    S.help.messages = r.messages || [];
    S.help.error = null;
    const staffNow = S.help.messages.filter((m) => m.from === "staff").length;
    if (!S.help.open && staffNow > staffBefore) {
      S.help.unread += staffNow - staffBefore;
      renderTop();
    }
  } catch (err) {
    S.help.error = err.status === 404 || err.status === 405 ? "unavailable" : err.offline ? "offline" : err.message;
  }
  if (S.help.open) renderHelp();
}
setInterval(() => {
  if (S.token && S.state && (S.help.open || ["waiting", "answering", "confirm"].includes(S.view))) pollHelp();
}, 5000);

function renderHelp() {
  const root = $("#overlay");
  if (!S.help.open) return clear(root);
  const existing = root.querySelector("#help-text");
  const draft = existing ? existing.value : "";
  const text = h("textarea", { id: "help-text", rows: "3", "aria-label": L("留言", "Message") });
  text.value = draft;
  const send = button(L("发送", "Send"), async () => {
    const value = text.value.trim();
    if (!value) return;
    send.disabled = true;
    try {
      await api.post("/api/v1/candidate/help", { text: value });
      text.value = "";
      await pollHelp();
    } catch (err) {
      S.help.error = err.offline ? "offline" : err.message;
      send.disabled = false;
      renderHelp();
    }
  }, { class: "primary" });
  const phone = S.state && S.state.exam.help_phone;
  clear(root).append(h("div", { class: "backdrop" }, h("aside", { class: "dialog help", role: "dialog", "aria-labelledby": "help-title" },
    h("h2", { id: "help-title" }, L("联系监考员与技术服务", "Contact the proctor and tech support")),
    phone ? h("p", null, L("求助电话：", "Help phone: "), h("strong", { id: "help-phone" }, phone)) : null,
    h("p", { class: "hint" }, L("遇到设备、网络或其他问题，请在下方留言，监考员会在这里回复。录像不会因此中断。", "For device, network or other problems write below; the proctor answers here. Recording continues.")),
    h("ol", { class: "messages", id: "help-messages" }, S.help.messages.map((m) => h("li", { class: m.from }, h("span", { class: "from" }, m.from === "staff" ? L("监考员", "Proctor") : L("我", "Me")), h("span", { class: "at" }, at(m.at, true)), h("p", null, m.text)))),
    S.help.error === "unavailable" ? note("error", L("在线留言暂不可用，请拨打求助电话。", "Messages are unavailable: please call.")) : S.help.error ? note("error", S.help.error === "offline" ? L("网络不通，留言未发送。", "Offline: not sent.") : S.help.error) : null,
    text,
    h("div", { class: "actions" }, button(L("关闭", "Close"), () => {
      S.help.open = false;
      renderHelp();
    }, { class: "secondary" }), send),
  )));
}

// --- routing by the server's stage ---------------------------------------------------------------

function route() {
  const st = S.state;
  switch (st.stage) {
    case "not_logged_in":
      return show("login");
    case "lot":
    case "attachments":
    case "enter":
      if (evidenceRequired() && !store.bindingSeen) return show("binding");
      return show(st.stage);
    case "waiting":
    case "answering":
      if (!S.recorders.webcam || !S.recorders.screen || !S.screen) return show("resume");
      if (st.stage === "waiting") return show(store.confirmed ? "waiting" : "confirm");
      return startAnswering();
    case "finished":
      if (!S.finishing && (S.recorders.webcam || S.recorders.screen)) return finish("deadline");
      return show("uploads");
    case "absent":
      return show("absent");
    default:
      return show("error", `unknown stage ${st.stage}`);
  }
}

async function boot() {
  if (!examId) return show("error", L("链接不完整：缺少考试编号。请使用考试通知中的完整链接。", "The link is incomplete (no exam id): use the full link from your notice."));
  try {
    await S.clock.sync(api);
  } catch {
    return show("offline");
  }
  if (S.token) {
    try {
      await afterToken();
      return route();
    } catch (err) {
      if (err.offline) return show("offline");
      // The session is gone (expired, replaced, server restarted): log in again. The old token
      // still goes with the login request so the server can hand over at once.
      S.token = null;
      if (store.attemptId) {
        // Leftover chunks of this attempt upload after the new login.
        S.loginMessage = note("info", L("请重新人脸登录以继续考试。", "Log in again to continue."));
      }
      return show("login");
    }
  }
  show("device");
}

window.addEventListener("error", (e) => {
  if (S.token) emit("client_error", { where: "window", message: String(e.message).slice(0, 300), source: `${e.filename}:${e.lineno}` });
});
window.addEventListener("unhandledrejection", (e) => {
  if (S.token) emit("client_error", { where: "promise", message: String(e.reason).slice(0, 300) });
});
addEventListener("online", renderNet);
addEventListener("offline", renderNet);
window.addEventListener("beforeunload", (e) => {
  const recording = Object.values(S.recorders).some((r) => r && r.active);
  if (recording || (S.engine && S.engine.backlog().chunks)) {
    e.preventDefault();
    e.returnValue = "";
  }
});

$("#lang").addEventListener("click", () => setLang(currentLang() === "en" ? "zh-CN" : "en"));
onLangChange(() => {
  rerender();
  if (S.help.open) renderHelp();
});

boot();
