// Help (求助): candidates with a conversation, unanswered ones first; a chat per candidate whose
// replies (回复 / 发送) the candidate sees in the desk's help panel. Everything is in the event
// log, which the live connection already delivers.

import { h, clear } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";
import { store, candidate, clock } from "./store.js";

let selected = null;
let draft = "";
let shownKey = "";

function conversations() {
  const out = [];
  for (const [aid, evs] of store.events) {
    const msgs = evs.filter((e) => e.kind === "help_message");
    if (!msgs.length) continue;
    const last = msgs[msgs.length - 1];
    // Answered by a reply, or closed by a logged dismissal of this very message.
    const dismissed = evs.some((e) => e.kind === "help_dismissed" && (e.data || {}).seq === last.seq);
    out.push({ aid, msgs, last, open: (last.data || {}).from === "candidate" && !dismissed });
  }
  out.sort((a, b) => Number(b.open) - Number(a.open) || Date.parse(b.last.at) - Date.parse(a.last.at));
  return out;
}

/** Unanswered conversations, newest message first: [{aid, msgs, last}]. */
export function openHelp() {
  return conversations().filter((c) => c.open);
}

export function openHelpCount() {
  return openHelp().length;
}

export function selectHelp(aid) {
  selected = aid;
}

export function renderHelp(queue, chat) {
  const convs = conversations();
  queue.replaceChildren(
    ...convs.map(({ aid, last, open }) => {
      const c = candidate(aid);
      return h(
        "li",
        { class: `${open ? "open" : ""} ${aid === selected ? "selected" : ""}` },
        h(
          "button",
          { type: "button", onclick: () => { selected = aid; renderHelp(queue, chat); } },
          h("strong", null, `${c.name}（${c.ticket}）`),
          open ? h("span", { class: "badge warn" }, tr("待回复", "Unanswered")) : null,
          h("span", { class: "preview" }, `${clock(last.at)} ${(last.data || {}).text || ""}`),
        ),
      );
    }),
  );
  if (!convs.length) queue.append(h("li", { class: "muted" }, tr("暂无求助", "No help requests")));
  const conv = convs.find((x) => x.aid === selected);
  if (!conv) {
    shownKey = "";
    clear(chat).append(h("p", { class: "muted" }, tr("选择左侧的考生查看求助对话。", "Pick a candidate on the left to see the conversation.")));
    return;
  }
  const key = `${conv.aid}:${conv.last.seq}:${candidate(conv.aid).name}`;
  if (key === shownKey && chat.querySelector("#reply-text")) return; // nothing new: keep typing
  shownKey = key;
  const prev = chat.querySelector("#reply-text");
  if (prev) draft = prev.value;
  const had = prev && document.activeElement === prev;
  const c = candidate(conv.aid);
  const input = h("input", { id: "reply-text", type: "text", maxlength: 1000, autocomplete: "off", value: draft });
  const send = h("button", { type: "submit", class: "primary" }, tr("发送", "发送 Send"));
  const form = h(
    "form",
    {
      class: "reply",
      onsubmit: async (e) => {
        e.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        send.disabled = true;
        try {
          await store.api.post(`/api/v1/staff/attempts/${conv.aid}/help`, { text });
          input.value = "";
          draft = "";
        } catch (err) {
          window.alert(tr("发送失败：{m}", "Sending failed: {m}", { m: err.message }));
        } finally {
          send.disabled = false;
        }
      },
    },
    h("label", { for: "reply-text" }, tr("回复", "回复 Reply")),
    input,
    send,
  );
  const log = h(
    "ol",
    { class: "messages", "aria-label": tr("与 {n} 的对话", "Conversation with {n}", { n: c.name }) },
    conv.msgs.map((m) =>
      h(
        "li",
        { class: (m.data || {}).from === "staff" ? "from-staff" : "from-candidate" },
        h("span", { class: "who" }, (m.data || {}).from === "staff" ? `${tr("工作人员", "Staff")} ${m.actor.replace(/^staff:/, "")}` : c.name),
        h("time", { datetime: m.at }, clock(m.at)),
        h("p", null, (m.data || {}).text || ""),
      ),
    ),
  );
  clear(chat).append(h("h3", null, `${c.name}（${c.ticket}）`), log, form);
  log.lastElementChild?.scrollIntoView({ block: "end" });
  if (had) input.focus();
}
