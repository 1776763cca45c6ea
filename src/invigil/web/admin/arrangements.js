// 个别安排: decisions the office makes for one candidate. Find them by ticket or name, then:
// extra time (their deadline moves), a move to another room, a late entry with a reason. Below,
// the re-sit proposals that the recorded outages raise under the exam's rule (确认重考 / 驳回),
// and what has been arranged so far. Every decision is audited and in the candidate's log.

import { clear, h } from "../shared/dom.js";
import { confirmDialog } from "../shared/confirm.js";
import { examDateTime, tr, zoneNote } from "../shared/i18n.js";
import { duration, officeStyles, statusName } from "./office.js";

const STAGES = {
  not_logged_in: ["未登录", "Not logged in"],
  lot: ["待抽签", "Lot"],
  attachments: ["阅读附件", "Attachments"],
  enter: ["待入场", "To enter"],
  waiting: ["待考", "Waiting"],
  answering: ["答题中", "Answering"],
  finished: ["已交卷", "Finished"],
  absent: ["缺考", "Absent"],
};
const stageName = (s) => (STAGES[s] ? tr(STAGES[s][0], STAGES[s][1]) : statusName(s));

// The exam's offset (from its arrangements): the page's times are in the exam's zone.
let tz;
const dateTime = (t) => examDateTime(t, tz);

export async function render(root, ctx) {
  officeStyles();
  const id = encodeURIComponent(ctx.examId);
  const [roomsReply, resit, done] = await Promise.all([
    ctx.api.get(`/api/v1/admin/exams/${id}/rooms`),
    ctx.api.get(`/api/v1/admin/exams/${id}/resit`),
    ctx.api.get(`/api/v1/admin/exams/${id}/arrangements`),
  ]);
  tz = done.utc_offset_minutes;
  const panel = h("div", { id: "arrangement-panel" });
  const doneBox = h("div", {}, doneSection(done));
  // What has been arranged is read again after each decision made on this page.
  const reloadDone = async () => clear(doneBox).append(doneSection(await ctx.api.get(`/api/v1/admin/exams/${id}/arrangements`)));
  const results = h("div", { id: "candidate-results" });
  const q = h("input", { id: "candidate-q", type: "search", placeholder: tr("准考证号或姓名", "Ticket or name"), required: true, maxlength: 100 });
  const find = async (e) => {
    if (e) e.preventDefault();
    const r = await ctx.api.get(`/api/v1/admin/exams/${id}/candidates?q=${encodeURIComponent(q.value.trim())}`);
    clear(results);
    if (!r.candidates.length) return results.append(h("p", { class: "muted", role: "status" }, tr("没有找到考生。", "No candidate found.")));
    if (r.candidates.length === 1) return choose(r.candidates[0]);
    results.append(
      h("ul", { class: "plain-list" }, r.candidates.map((c) => h("li", {}, h("button", { type: "button", class: "link", onclick: () => choose(c) }, `${c.ticket} ${c.name}`), h("span", { class: "muted" }, ` ${c.room.code} · ${stageName(c.stage)}`)))),
    );
  };
  const choose = (c) => {
    clear(results);
    showCandidate(panel, ctx, id, c, roomsReply.rooms, reloadDone);
  };
  root.append(
    h("h2", {}, tr("个别安排", "Individual arrangements")),
    h("p", { class: "zone-note", id: "zone-note" }, zoneNote(tz)),
    h(
      "form",
      { class: "row", onsubmit: (e) => find(e).catch((err) => clear(results).append(h("p", { class: "note error", role: "alert" }, err.message))) },
      h("label", { for: "candidate-q" }, tr("查找考生", "Find a candidate")),
      q,
      h("button", { type: "submit" }, tr("查找", "Find")),
    ),
    results,
    panel,
    resitSection(ctx, id, resit),
    doneBox,
  );
}

function facts(c) {
  const pairs = [
    [tr("准考证号", "Ticket"), c.ticket],
    [tr("姓名", "Name"), c.name],
    [tr("考场", "Room"), `${c.room.code} ${c.room.name}`],
    [tr("状态", "Status"), stageName(c.stage)],
    [tr("截止时间", "Deadline"), h("span", { id: "candidate-deadline", "data-deadline": c.deadline }, dateTime(c.deadline))],
    [tr("延长时间", "Extra time"), c.extra_time_s ? tr("{m} 分钟", "{m} min", { m: c.extra_time_s / 60 }) : "—"],
    [tr("允许入场至", "Entry allowed until"), dateTime(c.entry_closes_at) + (c.late_entry_until ? tr("（补入场）", " (late entry)") : "")],
  ];
  return h("dl", { class: "facts-inline", id: "candidate-facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function showCandidate(panel, ctx, id, c, rooms, reloadDone) {
  const note = h("div", { role: "status", id: "arrangement-note" });
  const base = `/api/v1/admin/exams/${id}/attempts/${encodeURIComponent(c.attempt_id)}`;
  const run = async (fn, ok) => {
    try {
      const updated = await fn();
      showCandidate(panel, ctx, id, updated, rooms, reloadDone);
      const box = document.getElementById("arrangement-note");
      if (box) box.append(h("p", { class: "note ok" }, ok(updated)));
      reloadDone().catch(() => {});
    } catch (err) {
      clear(note).append(h("p", { class: "note error", role: "alert" }, err.message));
    }
  };

  const minutes = h("input", { id: "extra-minutes", type: "number", min: 0, max: 240, value: c.extra_time_s / 60 || 10, required: true });
  const extraWhy = h("input", { id: "extra-reason", maxlength: 500 });
  const extra = h(
    "form",
    {
      onsubmit: (e) => {
        e.preventDefault();
        run(
          () => ctx.api.post(`${base}/extra-time`, { minutes: Number(minutes.value), reason: extraWhy.value }),
          (u) => tr("已保存：截止时间改为 {d}。", "Saved: the deadline is now {d}.", { d: dateTime(u.deadline) }),
        );
      },
    },
    h("h4", {}, tr("延长时间", "Extra time")),
    h("label", { for: "extra-minutes" }, tr("共延长（分钟）", "Extra minutes in total")),
    minutes,
    h("label", { for: "extra-reason" }, tr("原因", "Reason")),
    extraWhy,
    h("button", { type: "submit", class: "primary" }, tr("保存延长时间", "Save extra time")),
  );

  const target = h("select", { id: "move-room" }, rooms.filter((r) => r.room_id !== c.room.room_id).map((r) => h("option", { value: r.room_id }, `${r.code} ${r.name}`)));
  const moveWhy = h("input", { id: "move-reason", maxlength: 500 });
  const move = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const label = target.selectedOptions[0] ? target.selectedOptions[0].textContent : "";
        if (!(await confirmDialog(tr("将 {n} 调到 {r}？其抽签号将在新考场重新抽取。", "Move {n} to {r}? Their lot number is drawn again there.", { n: c.name, r: label })))) return;
        run(() => ctx.api.post(`${base}/move`, { room_id: target.value, reason: moveWhy.value }), (u) => tr("已调到 {r}。", "Moved to {r}.", { r: u.room.code }));
      },
    },
    h("h4", {}, tr("调换考场", "Move to another room")),
    h("label", { for: "move-room" }, tr("目标考场", "Target room")),
    target,
    h("label", { for: "move-reason" }, tr("原因", "Reason")),
    moveWhy,
    h("button", { type: "submit", disabled: target.options.length === 0 }, tr("调换考场", "Move")),
  );

  const lateMinutes = h("input", { id: "late-minutes", type: "number", min: 1, max: 120, value: 10, required: true });
  const lateWhy = h("input", { id: "late-reason", maxlength: 500, required: true });
  const late = h(
    "form",
    {
      onsubmit: (e) => {
        e.preventDefault();
        run(
          () => ctx.api.post(`${base}/late-entry`, { minutes: Number(lateMinutes.value), reason: lateWhy.value }),
          (u) => tr("已允许补入场，至 {d}。", "Late entry allowed until {d}.", { d: dateTime(u.late_entry_until) }),
        );
      },
    },
    h("h4", {}, tr("补入场", "Late entry")),
    h("label", { for: "late-minutes" }, tr("允许入场的时限（分钟）", "Minutes to enter")),
    lateMinutes,
    h("label", { for: "late-reason" }, tr("原因（必填）", "Reason (required)")),
    lateWhy,
    h("button", { type: "submit", disabled: !!c.entered_at }, tr("允许补入场", "Allow late entry")),
  );

  clear(panel).append(
    h("section", { class: "card", "aria-labelledby": "cand-title", "data-attempt": c.attempt_id }, h("h3", { id: "cand-title" }, `${c.name}（${c.ticket}）`), facts(c), note, h("div", { class: "arr-grid" }, extra, move, late)),
  );
}

function ruleText(rule) {
  if (!rule) return tr("本场考试未启用重考建议。", "Re-sit proposals are off for this exam.");
  return tr("规则：作答期间单次中断 ≥ {a}，或 {n} 次较短中断（每次 ≥ {b}）。", "Rule: one outage of {a} or more, or {n} shorter ones (each {b} or more), while answering.", {
    a: duration(rule.min_outage_s),
    n: rule.short_outages,
    b: duration(rule.short_from_s),
  });
}

const RESIT_STATUS = { proposed: ["待决定", "To decide"], confirmed: ["已确认重考", "Re-sit confirmed"], dismissed: ["已驳回", "Dismissed"] };

function resitSection(ctx, id, data) {
  const decide = async (p, status) => {
    const text = status === "confirmed" ? tr("确认 {n} 重考？", "Confirm a re-sit for {n}?", { n: p.name }) : tr("驳回 {n} 的重考建议？", "Dismiss the re-sit proposal for {n}?", { n: p.name });
    if (!(await confirmDialog(text, { danger: status === "dismissed" }))) return;
    await ctx.api.post(`/api/v1/admin/exams/${id}/attempts/${encodeURIComponent(p.attempt_id)}/resit`, { status });
    ctx.refresh();
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "resit-title" },
    h("h3", { id: "resit-title" }, tr("重考建议", "Re-sit proposals")),
    h("p", { class: "hint" }, ruleText(data.rule)),
    data.proposals.length
      ? h(
          "table",
          { class: "table", id: "resit" },
          h("thead", {}, h("tr", {}, [tr("考生", "Candidate"), tr("考场", "Room"), tr("中断记录", "Outages"), tr("状态", "Status"), ""].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            data.proposals.map((p) =>
              h(
                "tr",
                { "data-attempt": p.attempt_id },
                h("td", {}, `${p.name}（${p.ticket}）`),
                h("td", {}, p.room),
                h("td", {}, p.outages.map((o) => `${dateTime(o.start)} ${duration(o.seconds)}`).join("；")),
                h("td", {}, tr(RESIT_STATUS[p.status][0], RESIT_STATUS[p.status][1]), p.decided_by ? h("span", { class: "muted" }, ` · ${p.decided_by}`) : ""),
                h(
                  "td",
                  { class: "row" },
                  p.status === "confirmed" ? null : h("button", { type: "button", class: "primary", onclick: () => decide(p, "confirmed") }, tr("确认重考", "Confirm re-sit")),
                  p.status === "dismissed" ? null : h("button", { type: "button", onclick: () => decide(p, "dismissed") }, tr("驳回", "Dismiss")),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, tr("暂无重考建议。", "No proposals.")),
  );
}

function doneSection(done) {
  const rows = [
    ...done.candidates.flatMap((c) => [
      c.extra_time_s ? [`${c.name}（${c.ticket}）`, tr("延长 {m} 分钟，截止 {d}", "{m} min extra, until {d}", { m: c.extra_time_s / 60, d: dateTime(c.deadline) })] : null,
      c.late_entry_until ? [`${c.name}（${c.ticket}）`, tr("补入场至 {d}", "late entry until {d}", { d: dateTime(c.late_entry_until) })] : null,
    ]),
    ...done.moves.map((m) => [`${m.name}（${m.ticket}）`, tr("{a} → {b}（{w}）", "{a} → {b} ({w})", { a: m.from, b: m.to, w: m.reason || "—" })]),
  ].filter(Boolean);
  return h(
    "section",
    { class: "card", "aria-labelledby": "done-title" },
    h("h3", { id: "done-title" }, tr("已做的安排", "Arranged so far")),
    rows.length ? h("ul", { class: "plain-list", id: "arranged" }, rows.map(([who, what]) => h("li", {}, h("strong", {}, who), " ", what))) : h("p", { class: "muted" }, tr("暂无。", "None yet.")),
  );
}
