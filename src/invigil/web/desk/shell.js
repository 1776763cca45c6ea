// The page around the stages: the header (stage bar, 手机录制中, 网络正常, 求助, 获取试题, language),
// the network banner, and show() that swaps the current stage's view.

import { $, clear, h } from "../shared/dom.js";
import { currentLang, formatBytes } from "../shared/i18n.js";
import { openHelp } from "./help.js";
import { shareScreen } from "./media.js";
import { renderPhone } from "./phone-status.js";
import { loadQuestions } from "./stage-answer.js";
import { L, S, VIEWS, button, isOnline, main, until } from "./state.js";

// --- the stage bar -------------------------------------------------------------------------------

export const STEPS = [
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
export const VIEW_STEP = {
  device: "device", login: "login", binding: "binding", lot: "lot", attachments: "attachments",
  enter: "enter", share: "enter", resume: "enter", confirm: "confirm", waiting: "answer",
  answering: "answer", uploads: "finish", absent: "enter",
};

function visibleSteps() {
  // The phone step only in an exam that requires the evidence camera (known after login).
  const phone = !!S.state && S.state.exam.evidence_camera === "required";
  return STEPS.filter(([k]) => k !== "binding" || phone);
}

const ZH_NUMBERS = "一二三四五六七八九";

/** A stage's heading, 第N步 numbered as the stage bar numbers it (a desk-only exam has no
 * phone step, so its later steps are one lower). */
export function stepTitle(key, zh, en) {
  const n = visibleSteps().findIndex(([k]) => k === key) + 1;
  return L(`第${ZH_NUMBERS[n - 1]}步：${zh}`, `Step ${n}: ${en}`);
}

/** Whether a step before the current one was really done: a candidate turned away at entry
 * (absent) may never have drawn a lot or read the attachments, and the bar must not say so. */
function stepDone(key) {
  const st = S.state;
  if (!st || S.view !== "absent") return true;
  if (key === "lot") return st.lot !== null && st.lot !== undefined;
  if (key === "attachments") return (st.attachments || []).every((a) => a.read);
  if (key === "binding") return !!st.evidence && st.evidence.status !== "not_bound";
  return true;
}

export function renderSteps() {
  const steps = visibleSteps();
  const current = steps.findIndex(([k]) => k === VIEW_STEP[S.view]);
  const ol = clear($("#steps"));
  steps.forEach(([key, zh, en], i) => {
    const cls = i === current ? "current" : i < current && stepDone(key) ? "done" : "";
    // Labels are drawn by CSS (data-label) so they never collide with the buttons' names.
    ol.append(h("li", { class: cls, "data-label": `${i + 1} ${L(zh, en)}` }));
  });
}

export function renderTop() {
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

export function questionsOut() {
  return !!S.questions || (!!S.state && until(S.state.schedule.starts_at) <= 0);
}

export function renderNet() {
  const net = $("#net");
  const online = isOnline();
  net.textContent = online ? L("网络正常", "Online") : L("网络已断开", "Offline");
  net.className = `net ${online ? "ok" : "bad"}`;
  renderPhone(); // what the desk knows of the phone depends on its own network
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

export function backlogText() {
  if (!S.engine) return "";
  const b = S.engine.backlog();
  if (b.chunks) return L("本机待上传：{n} 段（{b}）", "Waiting on this computer: {n} chunks ({b})", { n: b.chunks, b: formatBytes(b.bytes) });
  // While recording, "all uploaded" reads as "done": say that recording goes on and that
  // what it has made so far is on the server.
  return Object.values(S.recorders).some((r) => r && r.active)
    ? L("录像中 · 已录内容均已上传", "Recording · everything so far is on the server")
    : L("录像已全部上传到服务器", "All recorded video is on the server");
}

// --- views ---------------------------------------------------------------------------------------

export function show(view, arg) {
  if (S.view !== view && S.leave) {
    S.leave();
    S.leave = null;
  }
  // A new step starts at its heading (the previous step's button was near the bottom).
  if (S.view !== view) window.scrollTo(0, 0);
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
export function welcomeNote(view) {
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

export function rerender() {
  if (S.view) show(S.view, S.viewArg);
}

setInterval(() => {
  if (S.tick) S.tick();
}, 250);
