// The room grid: one tile per candidate with the latest snapshots of the three cameras and
// what a proctor checks at a glance. Tiles are kept and updated in place, so images that did
// not change are not refetched.

import { h, clear } from "../shared/dom.js";
import { setImage } from "./images.js";
import { formatBytes, tr } from "../shared/i18n.js";
import { camName, phoneName, stageName, ago } from "./labels.js";
import { store, serverNow, isAlert } from "./store.js";

const tiles = new Map(); // attempt_id -> {el, parts}

function openAlerts(aid) {
  return (store.events.get(aid) || []).filter((e) => isAlert(e) && !store.acked.has(`${aid}:${e.seq}`)).length;
}

/** The cameras this exam uses: no phone when the exam has no evidence camera. */
export function cameras(c) {
  const evidence = store.status?.exam?.evidence_camera ?? (c.evidence || {}).required;
  return evidence ? ["webcam", "screen", "evidence"] : ["webcam", "screen"];
}

function makeTile(c, onOpen) {
  const imgs = {};
  const cams = h(
    "div",
    { class: `cams n${cameras(c).length}` },
    cameras(c).map((k) => {
      imgs[k] = h("img", { alt: `${c.name} ${camName(k)}`, class: "empty", loading: "lazy" });
      return h("figure", { class: `cam cam-${k}` }, imgs[k], h("figcaption", null, camName(k)));
    }),
  );
  const parts = {
    imgs,
    name: h("span", { class: "name" }),
    ticket: h("span", { class: "ticket" }),
    lot: h("span", { class: "lot" }),
    stage: h("span", { class: "stage" }),
    badges: h("div", { class: "badges" }),
    facts: h("dl", { class: "facts" }),
  };
  const el = h(
    "article",
    {
      class: "tile",
      tabindex: "0",
      "data-attempt": c.attempt_id,
      onclick: () => onOpen(c.attempt_id),
      onkeydown: (e) => {
        if (e.key === "Enter") onOpen(c.attempt_id);
      },
    },
    // Name and ticket apart, as on the alert cards: a long name gives way, the ticket never does.
    h("header", null, h("span", { class: "who" }, parts.name, parts.ticket), parts.lot, parts.stage),
    cams,
    parts.badges,
    parts.facts,
  );
  return { el, parts };
}

function fact(label, value, cls) {
  return [h("dt", null, label), h("dd", { class: cls || "" }, value)];
}

export function uploadBacklog(c) {
  const missing = (c.uploads || []).reduce((n, u) => n + (u.state === "open" ? u.missing : 0), 0);
  return missing;
}

// Nothing is recorded before entry: no upload state to judge, so neither 正常 nor missing.
const BEFORE_ENTRY = new Set(["not_logged_in", "lot", "attachments", "enter", "absent"]);

function uploadsFact(c, backlog) {
  if (BEFORE_ENTRY.has(c.stage) && !(c.uploads || []).length) return fact(tr("上传", "Uploads"), "—", "");
  // The server sees gaps between the chunks it holds; the desk says what it has still to send.
  const waiting = c.desk_backlog ? c.desk_backlog.chunks : 0;
  const parts = [];
  if (backlog) parts.push(tr("缺 {n} 段", "{n} chunks missing", { n: backlog }));
  if (waiting) parts.push(tr("待上传 {n} 段", "{n} to upload", { n: waiting }));
  const [dt, dd] = fact(tr("上传", "Uploads"), parts.length ? parts.join(tr("，", ", ")) : tr("正常", "OK"), parts.length ? "warn" : "ok");
  // The size in the tooltip: the tile's line stays one line.
  if (waiting) dd.title = tr("电脑上尚有 {b} 录像待上传", "{b} of recording still on the computer", { b: formatBytes(c.desk_backlog.bytes) });
  return [dt, dd];
}

/** The server's clock is ``afterMs`` past the room status's schedule time ``field``. */
function past(field, afterMs = 0) {
  const at = Date.parse(store.status?.schedule?.[field]);
  return Number.isFinite(at) && serverNow() >= at + afterMs;
}

/** The exam's entry has closed, on the server's clock. */
function entryClosed() {
  return past("entry_closes_at");
}

/** Not entered when the exam's entry has closed: only then is a missing candidate a warning.
 * The server marks everyone not yet in from entry opening on (``late``); until entry closes
 * they are shown as their stage says (未登录, 待入场 …), without the warning border. Past the
 * close the server soon reports them 缺考, or keeps them late when a late entry was allowed. */
function notEntered(c) {
  return !!c.late && entryClosed();
}

// Past T + 30 s an answering candidate whose computer has not received the questions (no
// questions_delivered in the log, which the console holds whole once replayed) needs a look:
// the desk may be stuck, offline or closed.
const QUESTIONS_GRACE_MS = 30000;

function questionsMissing(c) {
  if (c.stage !== "answering" || !store.live || !past("starts_at", QUESTIONS_GRACE_MS)) return false;
  return !(store.events.get(c.attempt_id) || []).some((e) => e.kind === "questions_delivered");
}

function updateTile(tile, c) {
  const { parts, el } = tile;
  const late = notEntered(c);
  parts.name.textContent = c.name;
  parts.ticket.textContent = `（${c.ticket}）`;
  parts.lot.textContent = c.lot ? tr("{n} 号", "No. {n}", { n: c.lot }) : tr("未抽签", "No lot");
  parts.stage.textContent = stageName(c.stage);
  el.classList.toggle("absent", !!c.absent);
  el.classList.toggle("late", late);
  el.classList.toggle("offline", !c.online && ["waiting", "answering"].includes(c.stage));
  const alerts = openAlerts(c.attempt_id);
  el.classList.toggle("has-alert", alerts > 0);
  for (const k of Object.keys(parts.imgs)) {
    const snap = (c.snapshots || {})[k];
    setImage(parts.imgs[k], snap ? snap.url : null);
    parts.imgs[k].title = snap ? `${camName(k)} ${ago(snap.at, serverNow())}` : tr("{c}：无画面", "{c}: no picture", { c: camName(k) });
  }
  clear(parts.badges).append(
    ...[
      c.absent && h("span", { class: "badge bad" }, tr("缺考", "Absent")),
      late && h("span", { class: "badge warn" }, tr("未入场", "Not entered")),
      questionsMissing(c) && h("span", { class: "badge warn" }, tr("试题未送达", "No questions yet")),
      alerts && h("span", { class: "badge bad" }, tr("提醒 {n}", "Alerts {n}", { n: alerts })),
      c.help_open && h("span", { class: "badge warn" }, tr("求助", "Help")),
    ].filter(Boolean),
  );
  const ev = c.evidence || {};
  const backlog = uploadBacklog(c);
  clear(parts.facts).append(
    ...fact(tr("在线", "Online"), c.online ? tr("在线", "online") : tr("离线", "offline"), c.online ? "ok" : "bad"),
    ...fact(tr("人脸", "Face"), c.face_verified ? tr("已核验", "verified") : tr("未核验", "not verified"), c.face_verified ? "ok" : ""),
    ...("evidence" in parts.imgs ? fact(camName("evidence"), phoneName(ev.status), ev.status === "recording" ? "ok" : "bad") : []),
    ...uploadsFact(c, backlog),
    ...fact(tr("心跳", "Heartbeat"), ago(c.last_seen_at, serverNow())),
  );
}

export function renderGrid(root, onOpen) {
  const status = store.status;
  if (!status) return;
  const seen = new Set();
  for (const c of status.candidates) {
    seen.add(c.attempt_id);
    let tile = tiles.get(c.attempt_id);
    if (!tile) {
      tile = makeTile(c, onOpen);
      tiles.set(c.attempt_id, tile);
    }
    updateTile(tile, c);
  }
  for (const [aid, tile] of tiles) {
    if (!seen.has(aid)) {
      tile.el.remove();
      tiles.delete(aid);
    }
  }
  const order = status.candidates.map((c) => tiles.get(c.attempt_id).el);
  if (order.some((el, i) => root.children[i] !== el)) root.replaceChildren(...order);
}

export function resetGrid(root) {
  tiles.clear();
  clear(root);
}
