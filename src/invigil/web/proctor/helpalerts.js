// Requests that must not wait behind a tab: a candidate's unanswered 求助 message (in the watched
// room, or in another of the proctor's rooms, naming it) and, for tech support, a pending
// face-login request. Each is a role="alert" element naming the candidate, pinned above whatever
// view is open (grid, detail, any tab), with a short beep when it first appears, until it is
// answered (a reply, a logged dismissal, or the tech decision).

import { h } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";
import { beep } from "./alerts.js";
import { openHelp } from "./help.js";
import { store, candidate } from "./store.js";

let nodes = new Map(); // key -> element: kept across renders so screen readers announce once
const heard = new Set(); // keys that already beeped

async function dismiss(aid, seq, name) {
  if (!window.confirm(tr("不回复并关闭 {name} 的求助？此操作会记录在考生的事件日志中。", "Close {name}'s help request without a reply? This is logged in the candidate's event log.", { name }))) return;
  try {
    await store.api.post(`/api/v1/staff/attempts/${aid}/help/dismiss`, { seq });
  } catch (err) {
    window.alert(tr("操作失败：{m}", "Failed: {m}", { m: err.message }));
  }
}

function helpAlert(aid, msg, onOpenChat) {
  const c = candidate(aid);
  const text = (msg.data || {}).text || "";
  return h(
    "div",
    { class: "help-alert", role: "alert", "data-attempt": aid, "data-seq": String(msg.seq) },
    // The tag stays outside the button: its name must not start like the 求助 tab's.
    h("span", { class: "tag" }, tr("求助", "Help")),
    h(
      "button",
      { type: "button", class: "help-alert-body", title: tr("打开对话并回复", "Open the chat to reply"), onclick: () => onOpenChat(aid) },
      h("strong", null, `${c.name}（${c.ticket}）`),
      h("span", { class: "text" }, text),
    ),
    h("button", { type: "button", class: "dismiss", onclick: () => dismiss(aid, msg.seq, c.name) }, tr("忽略", "Dismiss")),
  );
}

/** A help request from another of the proctor's rooms: it names the room and opens it. */
function elsewhereAlert(r, onGoTo) {
  return h(
    "div",
    { class: "help-alert elsewhere", role: "alert", "data-attempt": r.attempt_id, "data-seq": String(r.seq) },
    h("span", { class: "tag" }, tr("求助", "Help")),
    h(
      "button",
      { type: "button", class: "help-alert-body", title: tr("切换到该考场并回复", "Switch to that room to reply"), onclick: () => onGoTo(r.room_id, r.attempt_id) },
      h("strong", null, `${r.name}（${r.ticket}）`),
      h("span", { class: "text" }, r.text),
      h("span", { class: "room" }, tr("{room}，点此前往", "{room}, click to go there", { room: `${r.room_name}（${r.room}）` })),
    ),
  );
}

function techAlert(r, onOpenTech) {
  return h(
    "div",
    { class: "help-alert tech", role: "alert", "data-request": r.request_id },
    h("span", { class: "tag" }, tr("人脸审核", "Face login")),
    h(
      "button",
      { type: "button", class: "help-alert-body", title: tr("打开人脸审核", "Open face-login review"), onclick: () => onOpenTech(r.request_id) },
      h("strong", null, `${r.name}（${r.ticket}）`),
      h("span", { class: "text" }, r.text ? tr("申请人工审核：{t}", "asks for a manual check: {t}", { t: r.text }) : tr("申请人工审核", "asks for a manual check")),
    ),
  );
}

/** Draw the pinned alerts; `requests` are the pending face-login requests (tech users only),
 * `elsewhere` the open help requests of the staff member's other rooms. */
export function renderHelpAlerts(root, { requests, elsewhere, onOpenChat, onOpenTech, onGoTo }) {
  const keep = new Map();
  const items = [];
  let fresh = false;
  // The node key includes the name (the roster may arrive after the event); the beep key not.
  const add = (id, name, make) => {
    const key = `${id}:${name}`;
    const node = nodes.get(key) || make();
    keep.set(key, node);
    items.push(node);
    if (!heard.has(id)) {
      heard.add(id);
      fresh = true;
    }
  };
  for (const { aid, last } of openHelp()) {
    add(`help:${aid}:${last.seq}`, candidate(aid).name, () => helpAlert(aid, last, onOpenChat));
  }
  for (const r of elsewhere) add(`help:${r.attempt_id}:${r.seq}`, r.name, () => elsewhereAlert(r, onGoTo));
  for (const r of requests) add(`tech:${r.request_id}`, r.name, () => techAlert(r, onOpenTech));
  nodes = keep;
  if (items.length !== root.children.length || items.some((el, i) => root.children[i] !== el)) {
    root.replaceChildren(...items);
  }
  root.hidden = items.length === 0;
  // The work area moves down by the pinned alerts' height, so they cover none of it.
  document.documentElement.style.setProperty("--pinned-h", `${root.hidden ? 0 : root.offsetHeight}px`);
  if (fresh) beep();
}

export function resetHelpAlerts(root) {
  nodes = new Map();
  root.replaceChildren();
  root.hidden = true;
  document.documentElement.style.setProperty("--pinned-h", "0px");
}
