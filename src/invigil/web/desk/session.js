// The candidate's session: login → state, heartbeat, warnings, a lost session, and routing
// to the view of the server's stage.

import { backoffFor } from "../shared/backoff.js";
import { $, clear, h } from "../shared/dom.js";
import { UploadEngine } from "../shared/upload.js";
import { notePhone } from "./phone-status.js";
import { renderNet, rerender, show } from "./shell.js";
import { startAnswering } from "./stage-answer.js";
import { finish } from "./stage-finish.js";
import { HEARTBEAT_MS, L, S, VIEWS, api, button, card, emit, events, examId, hooks, later, note, save, store } from "./state.js";

// Proctor warnings: shown on every stage until the candidate acknowledges each one.
export function showWarnings(list) {
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

export async function loggedIn(r) {
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
export async function afterToken() {
  await refreshState();
  events.start();
  await ensureEngine();
  startHeartbeat();
}

export async function ensureEngine() {
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

export async function refreshState() {
  const t0 = performance.now();
  const st = await api.get("/api/v1/candidate/state");
  S.clock.observe(st.now, t0, performance.now());
  S.state = st;
  showWarnings(st.warnings);
  return st;
}

let heartbeatTimer = null;
export function startHeartbeat() {
  if (heartbeatTimer) return;
  const gate = backoffFor("heartbeat");
  const beat = async () => {
    if (!S.token || !gate.ready()) return;
    const t0 = performance.now();
    try {
      // What is still to upload goes with it: the proctor sees a candidate falling behind.
      const backlog = S.engine ? S.engine.backlog() : { chunks: 0, bytes: 0 };
      const r = await api.post("/api/v1/candidate/heartbeat", { backlog });
      S.clock.observe(r.now, t0, performance.now());
      showWarnings(r.warnings);
      applyDeadline(r.deadline);
      notePhone(r.evidence);
      onServerStage(r.stage);
    } catch (err) {
      // A loaded server asks to wait (503/429 Retry-After); offline: the banner says so; 401
      // is handled by sessionLost.
      gate.note(err);
    }
    renderNet();
  };
  heartbeatTimer = setInterval(beat, HEARTBEAT_MS);
}

/** Extra time from the exam office moves this candidate's deadline: the countdown follows. */
export function applyDeadline(deadline) {
  if (!deadline || !S.state) return;
  S.state.schedule.deadline = deadline;
  if (S.questions && S.questions.deadline !== deadline) S.questions = { ...S.questions, deadline };
}

export function onServerStage(stage) {
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

hooks.sessionLost = (err) => sessionLost(err);

export function sessionLost(err) {
  if (!S.token) return;
  S.token = null;
  const replaced = err.code === "session_revoked" && err.body.reason === "replaced";
  S.loginMessage = note("error", replaced
    ? L("您已在其他设备登录，本页面的登录已失效。如需在本机继续，请重新人脸登录。", "You logged in on another device; this page was signed out. Log in again to continue here.")
    : L("登录已失效，请重新人脸登录。正在进行的录像不会中断，也不会丢失。", "Your login expired: log in again. Recording continues and nothing is lost."));
  if (S.view && S.view !== "login" && S.view !== "device") S.resumeView = S.view;
  show("login");
}

export function evidenceRequired() {
  return S.state && S.state.exam.evidence_camera === "required";
}

VIEWS.error = (text) => card(L("无法打开考试", "Cannot open the exam"), note("error", text));

VIEWS.offline = () => {
  later(boot, 3000);
  return card(L("正在连接服务器", "Connecting"), note("error", L("暂时无法连接服务器，请检查网络。页面会每隔几秒自动重试。", "Cannot reach the server: check the network. Retrying every few seconds.")));
};


// --- routing by the server's stage ---------------------------------------------------------------

export function route() {
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

export async function boot() {
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
