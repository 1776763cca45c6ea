// 求助: the help panel (phone number, messages with the proctor).

import { $, clear, h } from "../shared/dom.js";
import { renderTop } from "./shell.js";
import { L, S, api, atSecond, button, emit, note } from "./state.js";

// 求助 --------------------------------------------------------------------------------------------

export function openHelp() {
  S.help.open = true;
  S.help.unread = 0;
  emit("help_requested", { view: S.view });
  renderHelp();
  pollHelp();
}

// Polls overlap (the panel opening, the timer, a send) and answer out of order: an answer is
// applied unless a later-issued one (or a message just sent) already was, so a late old answer
// cannot hide a message, and slow answers that each outlast the timer are still shown.
let issued = 0;
let applied = 0;

function apply(seq, messages) {
  if (seq < applied) return false;
  applied = seq;
  const staffBefore = S.help.messages.filter((m) => m.from === "staff").length;
  S.help.messages = messages;
  const staffNow = messages.filter((m) => m.from === "staff").length;
  if (!S.help.open && staffNow > staffBefore) {
    S.help.unread += staffNow - staffBefore;
    renderTop();
  }
  return true;
}

export async function pollHelp() {
  const mine = ++issued;
  try {
    const r = await api.get("/api/v1/candidate/help");
    if (!apply(mine, r.messages || [])) return;
    S.help.error = null;
  } catch (err) {
    if (mine < applied) return;
    S.help.error = err.status === 404 || err.status === 405 ? "unavailable" : err.offline ? "offline" : err.message;
  }
  if (S.help.open) renderHelp();
}
setInterval(() => {
  if (S.token && S.state && (S.help.open || ["waiting", "answering", "confirm"].includes(S.view))) pollHelp();
}, 5000);

// A message sent as the network comes back can fail before it leaves the browser: it is tried
// again a few times before the candidate is told it was not sent (and the draft stays).
const SEND_TRIES = 4;
const SEND_RETRY_MS = 2000;

async function sendHelp(text) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.post("/api/v1/candidate/help", { text });
    } catch (err) {
      if (!err.offline || attempt >= SEND_TRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, SEND_RETRY_MS));
    }
  }
}

export function renderHelp() {
  const root = $("#overlay");
  if (!S.help.open) return clear(root);
  // The draft lives in the state, not only in the box on screen: every redraw (a poll, the
  // panel closed and opened again) builds a new box from it, and nothing typed is lost.
  const text = h("textarea", { id: "help-text", rows: "3", "aria-label": L("留言", "Message") });
  text.value = S.help.draft;
  text.addEventListener("input", () => (S.help.draft = text.value));
  const send = button(L("发送", "Send"), async () => {
    const value = text.value.trim();
    if (!value) return;
    send.disabled = true;
    S.help.sendError = null;
    try {
      const sent = await sendHelp(value);
      // Unless the candidate has gone on typing meanwhile, the sent text leaves the box.
      if (S.help.draft.trim() === value) S.help.draft = "";
      // Shown at once from the server's receipt; the poll after it brings any reply.
      if (!S.help.messages.some((m) => m.seq === sent.seq)) {
        apply(++issued, [...S.help.messages, { seq: sent.seq, from: "candidate", text: value, at: sent.at }]);
      }
      renderHelp();
      await pollHelp();
    } catch (err) {
      // Kept until the next send: a poll that succeeds meanwhile must not hide it.
      S.help.sendError = err.offline ? "offline" : err.message;
      send.disabled = false;
      renderHelp();
    }
  }, { class: "primary" });
  const phone = S.state && S.state.exam.help_phone;
  const error = S.help.sendError || S.help.error;
  clear(root).append(h("div", { class: "backdrop" }, h("aside", { class: "dialog help", role: "dialog", "aria-labelledby": "help-title" },
    h("h2", { id: "help-title" }, L("联系监考员与技术服务", "Contact the proctor and tech support")),
    phone ? h("p", null, L("求助电话：", "Help phone: "), h("strong", { id: "help-phone" }, phone)) : null,
    h("p", { class: "hint" }, L("遇到设备、网络或其他问题，请在下方留言，监考员会在这里回复。录像不会因此中断。", "For device, network or other problems write below; the proctor answers here. Recording continues.")),
    h("ol", { class: "messages", id: "help-messages" }, S.help.messages.map((m) => h("li", { class: m.from }, h("span", { class: "from" }, m.from === "staff" ? L("监考员", "Proctor") : L("我", "Me")), h("span", { class: "at" }, atSecond(m.at)), h("p", null, m.text)))),
    error === "unavailable" ? note("error", L("在线留言暂不可用，请拨打求助电话。", "Messages are unavailable: please call.")) : error ? note("error", error === "offline" ? L("网络不通，留言未发送。", "Offline: not sent.") : error) : null,
    text,
    h("div", { class: "actions" }, button(L("关闭", "Close"), () => {
      S.help.open = false;
      renderHelp();
    }, { class: "secondary" }), send),
  )));
}
