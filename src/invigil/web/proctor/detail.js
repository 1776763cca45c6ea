// One candidate in detail: larger live snapshots, the event timeline (an alert opens it at its
// moment), the proctor's notes (监考员记录) and warnings sent to the candidate's screen.

import { h, clear } from "../shared/dom.js";
import { setImage } from "./images.js";
import { formatBytes, tr } from "../shared/i18n.js";
import { byTime } from "../shared/names.js";
import { cameras } from "./grid.js";
import { camName, phoneName, stageName, ago, describe } from "./labels.js";
import { store, candidate, clock, isAlert, serverNow } from "./store.js";

let current = null; // {aid, focusSeq, parts}

function close(root) {
  current = null;
  root.hidden = true;
  clear(root);
}

async function submit(path, input, button) {
  const text = input.value.trim();
  if (!text) return;
  button.disabled = true;
  try {
    await store.api.post(path, { text });
    input.value = "";
  } catch (err) {
    window.alert(tr("提交失败：{m}", "Failed: {m}", { m: err.message }));
  } finally {
    button.disabled = false;
  }
}

export function openDetail(root, aid, focusSeq) {
  const c = candidate(aid);
  const imgs = {};
  const parts = {
    info: h("dl", { class: "facts wide" }),
    timeline: h("ol", { class: "timeline", "aria-label": tr("事件时间线", "Timeline") }),
    notes: h("ul", { class: "notes" }),
    imgs,
  };
  const noteInput = h("textarea", { id: "note-text", rows: 2, maxlength: 2000 });
  const noteBtn = h("button", { type: "button" }, tr("添加记录", "Add note"));
  noteBtn.onclick = () => submit(`/api/v1/staff/attempts/${aid}/notes`, noteInput, noteBtn);
  const warnInput = h("textarea", { id: "warn-text", rows: 2, maxlength: 2000 });
  const warnBtn = h("button", { type: "button", class: "danger" }, tr("发送警告", "Send warning"));
  warnBtn.onclick = () => {
    if (warnInput.value.trim() && window.confirm(tr("向 {n} 的考试屏幕发送警告？", "Send a warning to {n}'s exam screen?", { n: c.name }))) {
      submit(`/api/v1/staff/attempts/${aid}/warnings`, warnInput, warnBtn);
    }
  };
  clear(root).append(
    h(
      "div",
      { class: "detail-card" },
      h(
        "header",
        null,
        h("h2", { id: "detail-title" }, `${c.name}（${c.ticket}）`),
        h("button", { type: "button", class: "close", onclick: () => close(root) }, tr("关闭", "Close")),
      ),
      h(
        "div",
        { class: "detail-body" },
        h(
          "div",
          { class: "detail-left" },
          h(
            "div",
            { class: `big-cams n${cameras(c).length}` },
            cameras(c).map((k) => {
              imgs[k] = h("img", { alt: `${c.name} ${camName(k)}`, class: "empty" });
              return h("figure", { class: `cam-${k}` }, imgs[k], h("figcaption", null, camName(k)));
            }),
          ),
          parts.info,
          h(
            "section",
            { class: "forms" },
            h("label", { for: "note-text" }, tr("监考员记录", "Proctor notes")),
            noteInput,
            noteBtn,
            parts.notes,
            h("label", { for: "warn-text" }, tr("警告（显示在考生屏幕上）", "Warning (shown on the candidate's screen)")),
            warnInput,
            warnBtn,
          ),
        ),
        h("section", { class: "detail-right" }, h("h3", null, tr("事件时间线", "Timeline")), parts.timeline),
      ),
    ),
  );
  root.hidden = false;
  root.onkeydown = (e) => {
    if (e.key === "Escape") close(root);
  };
  current = { aid, focusSeq, parts, root };
  refreshDetail(true);
}

export function refreshDetail(scroll = false) {
  if (!current) return;
  const { aid, parts, focusSeq } = current;
  const c = candidate(aid);
  for (const k of Object.keys(parts.imgs)) {
    const snap = (c.snapshots || {})[k];
    setImage(parts.imgs[k], snap ? snap.url : null);
  }
  const ev = c.evidence || {};
  clear(parts.info).append(
    ...[
      [tr("阶段", "Stage"), stageName(c.stage)],
      [tr("抽签号", "Lot"), c.lot || "—"],
      [tr("人脸核验", "Face check"), c.face_verified ? tr("已核验", "verified") : tr("未核验", "not verified")],
      [tr("在线", "Online"), c.online ? tr("在线", "online") : tr("离线", "offline")],
      [tr("最后心跳", "Last heartbeat"), ago(c.last_seen_at, serverNow())],
      "evidence" in parts.imgs ? [camName("evidence"), phoneName(ev.status)] : null,
      c.desk_backlog && c.desk_backlog.chunks
        ? [tr("电脑待上传", "Still on the computer"), tr("{n} 段（{b}）", "{n} chunks ({b})", { n: c.desk_backlog.chunks, b: formatBytes(c.desk_backlog.bytes) })]
        : null,
      [tr("入场时间", "Entered"), c.entered_at ? clock(c.entered_at) : "—"],
      [tr("交卷时间", "Submitted"), c.finished_at ? clock(c.finished_at) : "—"],
    ]
      .filter(Boolean)
      .flatMap(([k, v]) => [h("dt", null, k), h("dd", null, String(v))]),
  );
  const events = byTime(store.events.get(aid));
  let focusEl = null;
  parts.timeline.replaceChildren(
    ...events.map((e) => {
      const li = h(
        "li",
        { class: `ev sev-${e.severity}${isAlert(e) ? " is-alert" : ""}`, "data-seq": String(e.seq) },
        h("time", { datetime: e.at }, clock(e.at)),
        h("span", null, describe(e)),
      );
      if (e.seq === focusSeq) {
        li.classList.add("focus");
        focusEl = li;
      }
      return li;
    }),
  );
  parts.notes.replaceChildren(
    ...events
      .filter((e) => e.kind === "proctor_note" || e.kind === "warning")
      .map((e) =>
        h("li", { class: e.kind }, h("time", { datetime: e.at }, clock(e.at)), ` ${describe(e)}`),
      ),
  );
  if (scroll) {
    if (focusEl) focusEl.scrollIntoView({ block: "center" });
    else parts.timeline.lastElementChild?.scrollIntoView({ block: "end" });
  }
}

/** Close the detail dialog if it is open (a pinned help alert takes the proctor elsewhere). */
export function closeDetail() {
  if (current) close(current.root);
}

export function detailAttempt() {
  return current ? current.aid : null;
}
