// 考务总览: the exam day on one screen. Big numbers for the whole exam, a table per room (not
// logged in … absent, online, help, alerts, upload problems, a link into the room's console),
// the open help requests and the upload problems. Live: a WebSocket pushes every change (the
// server debounces), so the numbers follow the day without a reload; if it drops, the page
// reconnects and says so.

import { clear, h } from "../shared/dom.js";
import { examDateTime, tr, zoneNote } from "../shared/i18n.js";
import { STREAMS } from "../shared/names.js";
import { officeStyles, statusName } from "./office.js";

const UPLOAD_REASONS = {
  missing_chunks: ["缺少分片", "chunks missing"],
  stale: ["上传停滞", "upload stalled"],
  not_finalized: ["未完成交卷上传", "not finalized"],
};
const pick = (table, key) => (table[key] ? tr(table[key][0], table[key][1]) : key);

export async function render(root, ctx) {
  officeStyles();
  const id = encodeURIComponent(ctx.examId);
  const state = h("span", { class: "live-state off", id: "live-state", role: "status" }, tr("连接中…", "Connecting…"));
  const title = h("h2", { id: "overview-title" }, tr("考务总览", "Overview"));
  const body = h("div", { id: "overview" });
  root.append(h("div", { class: "title-row" }, title, state), body);
  draw(body, title, await ctx.api.get(`/api/v1/admin/exams/${id}/overview`));
  connect(root, ctx, body, title, state);
}

function connect(root, ctx, body, title, state) {
  let ws = null;
  let retry = 1000;
  let closed = false;
  const stop = () => {
    closed = true;
    window.removeEventListener("hashchange", stop);
    if (ws) ws.close();
  };
  // The shell re-renders into a fresh box on every route: leaving the tab ends the socket.
  window.addEventListener("hashchange", stop);
  const open = () => {
    if (closed || !root.isConnected) return stop();
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/api/v1/admin/overview/ws?exam=${encodeURIComponent(ctx.examId)}`);
    ws.onopen = () => ws.send(JSON.stringify({ token: ctx.session.token }));
    ws.onmessage = (e) => {
      if (!root.isConnected) return stop();
      const msg = JSON.parse(e.data);
      if (msg.type !== "overview") return;
      retry = 1000;
      state.className = "live-state on";
      state.textContent = tr("实时", "Live");
      draw(body, title, msg);
    };
    ws.onclose = (e) => {
      if (closed) return;
      state.className = "live-state off";
      if (e.code === 4401 || e.code === 4403) {
        state.textContent = tr("无权查看，请重新登录。", "Not allowed: sign in again.");
        return;
      }
      state.textContent = tr("连接中断，正在重连…", "Disconnected, reconnecting…");
      setTimeout(open, retry);
      retry = Math.min(retry * 2, 15000);
    };
  };
  open();
}

function big(key, label, n, alert = false) {
  return h("div", { class: `bignum${n === 0 ? " zero" : alert ? " alert" : ""}`, "data-total": key }, h("span", { class: "n" }, String(n)), h("span", { class: "l" }, label));
}

function draw(body, title, data) {
  const t = data.total;
  const dateTime = (at) => examDateTime(at, data.exam.utc_offset_minutes);
  const statuses = data.statuses;
  clear(title).append(tr("考务总览", "Overview"), h("span", { class: "muted" }, ` · ${data.exam.title}`));
  const cols = [tr("考场", "Room"), tr("人数", "Total"), ...statuses.map(statusName), tr("在线", "Online"), tr("求助", "Help"), tr("未确认提醒", "Open alerts"), tr("上传问题", "Upload problems"), ""];
  const cells = (counts, room) => statuses.map((s) => h("td", { class: "num", "data-status": s, "data-room": room }, String(counts[s])));
  const hot = (n) => ({ class: n ? "num hot" : "num" });
  clear(body).append(
    h(
      "p",
      { class: "muted" },
      tr("开考 {s}，结束 {d}", "Starts {s}, ends {d}", { s: dateTime(data.exam.starts_at), d: dateTime(data.exam.deadline) }),
    ),
    h("p", { class: "zone-note", id: "zone-note" }, zoneNote(data.exam.utc_offset_minutes)),
    h(
      "div",
      { class: "bignums", id: "totals" },
      statuses.map((s) => big(s, statusName(s), t.counts[s])),
      big("online", tr("在线", "Online"), t.counts.online),
      big("help_open", tr("求助待处理", "Open help"), t.help_open, true),
      big("alerts_open", tr("未确认提醒", "Open alerts"), t.alerts_open, true),
      big("upload_problems", tr("上传问题", "Upload problems"), t.upload_problems, true),
    ),
    h(
      "table",
      { class: "table overview-table", id: "overview-rooms" },
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        data.rooms.map((r) =>
          h(
            "tr",
            { "data-room": r.code },
            h("td", {}, `${r.code} ${r.name}`),
            h("td", { class: "num" }, String(r.counts.total)),
            cells(r.counts, r.code),
            h("td", { class: "num" }, String(r.counts.online)),
            h("td", hot(r.help_open), String(r.help_open)),
            h("td", hot(r.alerts_open), String(r.alerts_open)),
            h("td", hot(r.upload_problems), String(r.upload_problems)),
            h("td", {}, h("a", { href: r.console_url, "aria-label": tr("进入 {r} 监考台", "Open the console of {r}", { r: r.code }) }, tr("监考台", "Console"))),
          ),
        ),
        h(
          "tr",
          { class: "total", "data-room": "" },
          h("td", {}, tr("合计", "Total")),
          h("td", { class: "num" }, String(t.counts.total)),
          cells(t.counts, "total"),
          h("td", { class: "num" }, String(t.counts.online)),
          h("td", hot(t.help_open), String(t.help_open)),
          h("td", hot(t.alerts_open), String(t.alerts_open)),
          h("td", hot(t.upload_problems), String(t.upload_problems)),
          h("td", {}),
        ),
      ),
    ),
    h("div", {}, helpList(data, dateTime), uploadList(data, dateTime)),
  );
}

function roomCode(data, roomId) {
  const r = data.rooms.find((x) => x.room_id === roomId);
  return r ? r.code : "";
}

function helpList(data, dateTime) {
  if (!data.help_requests.length) return null;
  return h(
    "section",
    { class: "card" },
    h("h3", {}, tr("待处理的求助", "Open help requests")),
    h(
      "ul",
      { class: "plain-list", id: "open-help" },
      data.help_requests.map((x) => h("li", {}, h("strong", {}, `${x.name}（${x.ticket}）`), ` ${roomCode(data, x.room_id)} · ${dateTime(x.at)}：`, x.text || "")),
    ),
  );
}

function uploadList(data, dateTime) {
  if (!data.uploads.length) return null;
  return h(
    "section",
    { class: "card" },
    h("h3", {}, tr("上传问题", "Upload problems")),
    h(
      "table",
      { class: "table", id: "upload-problems" },
      h("thead", {}, h("tr", {}, [tr("考生", "Candidate"), tr("考场", "Room"), tr("录像", "Stream"), tr("问题", "Problem"), tr("已收分片", "Chunks"), tr("最后上传", "Last chunk")].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        data.uploads.map((u) =>
          h(
            "tr",
            {},
            h("td", {}, `${u.name}（${u.ticket}）`),
            h("td", {}, roomCode(data, u.room_id)),
            h("td", {}, pick(STREAMS, u.kind)),
            h("td", {}, pick(UPLOAD_REASONS, u.reason), u.missing ? tr("（缺 {n} 片）", " ({n} missing)", { n: u.missing }) : ""),
            h("td", { class: "num" }, String(u.received)),
            h("td", {}, dateTime(u.last_chunk_at)),
          ),
        ),
      ),
    ),
  );
}
