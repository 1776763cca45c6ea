// 6 进入考试: the entry window on the server's clock, the entire-screen share, absence.

import { clear, h } from "../shared/dom.js";
import { countdown } from "../shared/i18n.js";
import { shareScreen, startExamMedia } from "./media.js";
import { evidenceRequired, refreshState, route } from "./session.js";
import { rerender, show, stepTitle } from "./shell.js";
import { evidenceStatusText } from "./stage-binding.js";
import { L, S, VIEWS, api, at, button, card, later, note, store, until } from "./state.js";

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
      later(poll, 3000);
    };
    // As often as the binding step polls: the candidate has just pressed record on the phone.
    later(poll, 3000);
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
    stepTitle("enter", "入场", "enter"),
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
    evidenceRequired() ? h("p", null, button(L("显示手机绑定二维码", "Show the phone QR code"), () => show("binding", { qr: true }), { class: "link" })) : null,
  );
};

export function enterError(err) {
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


VIEWS.share = (arg = {}) => {
  const msg = arg.error === "not_monitor"
    ? note("error", L("您共享的是{s}，不是整个屏幕。考试要求共享【整个屏幕】：请再点一次下方按钮，在弹出的窗口中选择“整个屏幕”标签页，选中屏幕画面后点击“共享”。", "You shared {s}, not the entire screen. Click below again and choose the “Entire screen” tab, select the screen, then Share.", { s: arg.surface === "browser" ? L("一个浏览器标签页", "a browser tab") : arg.surface === "window" ? L("一个窗口", "a window") : L("其他内容", "something else") }))
    : arg.error === "cancelled"
      ? note("error", L("屏幕共享被取消或未获允许。考试必须共享整个屏幕，请点击下方按钮重新选择。", "Screen sharing was cancelled. The exam needs your entire screen: click below to choose again."))
      : arg.error ? note("error", L("无法共享屏幕：{d}", "Cannot share the screen: {d}", { d: arg.detail || arg.error })) : null;
  const go = button(L("共享整个屏幕", "Share entire screen"), () => shareScreen(arg.next || "confirm"), { class: "primary big" });
  return card(
    arg.resume ? L("继续考试", "Continue the exam") : L("共享整个屏幕", "Share your entire screen"),
    arg.resume ? resumeNote() : null,
    note("info", L("考试全程录制摄像头和整个屏幕。在弹出的窗口中请选择“整个屏幕”，不要选择窗口或标签页。", "The camera and the entire screen are recorded throughout. In the dialog choose “Entire screen”, not a window or tab.")),
    msg,
    h("div", { class: "actions" }, go),
  );
};

// Only a browser that holds earlier recordings can say they are kept and uploading (after a
// crash on another computer this one has none).
function resumeNote() {
  const held = !!S.engine && S.engine.summary().some((r) => r.produced > 0);
  return note("info", held
    ? L("页面曾关闭或刷新，考试录像需要重新开始。之前的录像已保存在本机，正在自动补传。请点击下方按钮，重新共享整个屏幕。", "The page was closed or reloaded: recording must start again. What was recorded before is kept and uploading. Click below to share the entire screen again.")
    : L("考试录像需要重新开始。请点击下方按钮，重新共享整个屏幕。", "Recording must start again. Click below to share the entire screen again."));
}

VIEWS.resume = () => VIEWS.share({ resume: true, next: S.state.stage === "answering" ? "answering" : store.confirmed ? "waiting" : "confirm" });

VIEWS.absent = () => card(
  L("未能入场", "Entry closed"),
  note("error", L("入场时间已于 {t} 结束，您未在规定时间内进入考试，按缺考处理。如有疑问，请联系监考员{p}。", "Entry closed at {t}; you did not enter in time and are counted absent. Contact the proctor{p} if this is wrong.", { t: at(S.state.schedule.entry_closes_at), p: S.state.exam.help_phone ? L("（电话 {n}）", " (phone {n})", { n: S.state.exam.help_phone }) : "" })),
);
