// The room grid: one tile per candidate with the latest snapshots of the three cameras and
// what a proctor checks at a glance. Tiles are kept and updated in place, so images that did
// not change are not refetched.

import { h, clear } from "../shared/dom.js";
import { setImage } from "./images.js";
import { CAMS, PHONE, STAGES, ago } from "./labels.js";
import { store, serverNow, isAlert } from "./store.js";

const tiles = new Map(); // attempt_id -> {el, parts}

function openAlerts(aid) {
  return (store.events.get(aid) || []).filter((e) => isAlert(e) && !store.acked.has(`${aid}:${e.seq}`)).length;
}

function makeTile(c, onOpen) {
  const imgs = {};
  const cams = h(
    "div",
    { class: "cams" },
    Object.keys(CAMS).map((k) => {
      imgs[k] = h("img", { alt: `${c.name} ${CAMS[k]}`, class: "empty", loading: "lazy" });
      return h("figure", { class: `cam cam-${k}` }, imgs[k], h("figcaption", null, CAMS[k]));
    }),
  );
  const parts = {
    imgs,
    name: h("span", { class: "name" }),
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
    h("header", null, parts.name, parts.lot, parts.stage),
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

function updateTile(tile, c) {
  const { parts, el } = tile;
  parts.name.textContent = `${c.name}（${c.ticket}）`;
  parts.lot.textContent = c.lot ? `${c.lot} 号` : "未抽签";
  parts.stage.textContent = STAGES[c.stage] || c.stage;
  el.classList.toggle("absent", !!c.absent);
  el.classList.toggle("late", !!c.late);
  el.classList.toggle("offline", !c.online && ["waiting", "answering"].includes(c.stage));
  const alerts = openAlerts(c.attempt_id);
  el.classList.toggle("has-alert", alerts > 0);
  for (const k of Object.keys(CAMS)) {
    const snap = (c.snapshots || {})[k];
    setImage(parts.imgs[k], snap ? snap.url : null);
    parts.imgs[k].title = snap ? `${CAMS[k]} ${ago(snap.at, serverNow())}` : `${CAMS[k]}：无画面`;
  }
  clear(parts.badges).append(
    ...[
      c.absent && h("span", { class: "badge bad" }, "缺考"),
      c.late && h("span", { class: "badge warn" }, "未入场"),
      alerts && h("span", { class: "badge bad" }, `提醒 ${alerts}`),
      c.help_open && h("span", { class: "badge warn" }, "求助"),
    ].filter(Boolean),
  );
  const ev = c.evidence || {};
  const backlog = uploadBacklog(c);
  clear(parts.facts).append(
    ...fact("在线", c.online ? "在线" : "离线", c.online ? "ok" : "bad"),
    ...fact("人脸", c.face_verified ? "已核验" : "未核验", c.face_verified ? "ok" : ""),
    ...fact("手机", PHONE[ev.status] || "—", ev.status === "recording" ? "ok" : ev.required ? "bad" : ""),
    ...fact("上传", backlog ? `缺 ${backlog} 段` : "正常", backlog ? "warn" : "ok"),
    ...fact("心跳", ago(c.last_seen_at, serverNow())),
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
