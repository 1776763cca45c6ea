// 成绩发布: one exam's results (final score, examiners, verdict), 发布成绩 with a 确定/取消
// confirmation, the audited re-open, and the CSV/XLSX exports. Also drawn on the exam's page.

import { $, clear, h } from "../shared/dom.js";
import { confirmDialog } from "../shared/confirm.js";
import { examDateTime, tr, zoneNote } from "../shared/i18n.js";
import { verdictLabel } from "../review/labels.js";

const EXPORTS = [
  ["scores", "成绩", "Scores"],
  ["absences", "缺考", "Absences"],
  ["uploads", "上传完整性", "Upload completeness"],
  ["rulings", "违纪裁定", "Rulings"],
];

export async function render(root, ctx) {
  await section(root, ctx);
}

export async function section(root, ctx, { heading = true } = {}) {
  const { api, session, examId } = ctx;
  const data = await api.get(`/api/v1/admin/exams/${encodeURIComponent(examId)}/results`);
  const exam = data.exam || { id: examId, title: examId };
  const dateTime = (t) => examDateTime(t, exam.utc_offset_minutes);
  const msg = h("div", { id: "publish-status", role: "status" });
  const publishBtn = h("button", { type: "button", class: "primary", id: "publish", disabled: !!data.published, onclick: () => publish(false) }, tr("发布成绩", "Publish scores"));

  async function publish(force) {
    const text = force
      ? tr("仍有考生评分不足或疑似违纪未裁定，确定强制发布成绩吗？发布后评分和裁定将被冻结。", "Some candidates lack scores or rulings. Publish anyway? Scores and rulings are frozen afterwards.")
      : tr("确定发布“{t}”的成绩？发布后考生即可查询，评分和裁定将被冻结。", "Publish the scores of “{t}”? Candidates can then look them up; scores and rulings are frozen.", { t: exam.title });
    if (!(await confirmDialog(text, { danger: force }))) return;
    clear(msg);
    try {
      await api.post(`/api/v1/admin/exams/${encodeURIComponent(examId)}/publish`, { force });
      await ctx.refresh();
      $("#publish-status").append(h("p", { class: "note ok" }, tr("成绩已发布。", "Scores published.")));
    } catch (err) {
      if (err.code === "scores_incomplete" || err.code === "flags_unruled") {
        const lots = (err.body && err.body.lots) || [];
        const unruled = (err.body && err.body.unruled) || [];
        msg.append(
          h(
            "div",
            { class: "note warn", id: "publish-problems" },
            h("p", {}, err.message),
            lots.length ? h("ul", { class: "short-scores" }, lots.map((l) => h("li", {}, tr("{room} {lot} 号：{n} 位考官已评", "{room} No. {lot}: {n} examiners", { room: l.room || "", lot: l.lot ?? "—", n: l.examiners })))) : null,
            unruled.length
              ? h(
                  "p",
                  { id: "unruled-count" },
                  tr("未裁定：{n} 名考生（{list}）", "Unruled: {n} candidates ({list})", {
                    n: unruled.length,
                    list: unruled.map((u) => tr("{room} {lot} 号", "{room} No. {lot}", { room: u.room || "", lot: u.lot ?? "—" })).join("、"),
                  }),
                )
              : null,
            h("button", { type: "button", class: "danger", id: "force-publish", onclick: () => publish(true) }, tr("强制发布", "Publish anyway")),
          ),
        );
      } else {
        msg.append(h("p", { class: "note error" }, err.message));
      }
    }
  }

  // Re-opening withdraws the publication so reviewers can change rulings; it needs a reason
  // and goes to the audit log.
  function reopenForm() {
    const reason = h("input", { id: "reopen-reason", size: 40 });
    const err = h("p", { class: "error", role: "status" });
    const form = h(
      "form",
      { class: "reopen-form", id: "reopen-form" },
      h("label", { for: "reopen-reason" }, tr("重新开放审核的理由", "Reason for re-opening the review")),
      reason,
      err,
      h("button", { type: "submit", class: "danger", id: "reopen" }, tr("重新开放审核", "Re-open review")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.textContent = "";
      if (!reason.value.trim()) return void (err.textContent = tr("请填写理由。", "Please give a reason."));
      const ok = await confirmDialog(
        tr("重新开放审核将撤回已发布的成绩，考生暂时无法查询，直至再次发布。确定继续？", "Re-opening withdraws the published scores until they are published again. Continue?"),
        { danger: true },
      );
      if (!ok) return;
      try {
        await api.post(`/api/v1/admin/exams/${encodeURIComponent(examId)}/reopen`, { reason: reason.value.trim() });
        await ctx.refresh();
        $("#publish-status").append(h("p", { class: "note ok" }, tr("已重新开放审核，成绩已撤回。", "Review re-opened; scores withdrawn.")));
      } catch (e2) {
        err.textContent = e2.message;
      }
    });
    return h("details", { class: "reopen" }, h("summary", {}, tr("重新开放审核…", "Re-open review…")), form);
  }

  const exports = h(
    "div",
    { class: "exports", id: "exports" },
    EXPORTS.map(([what, zh, en]) => [
      h("span", {}, tr(zh, en)),
      ...["csv", "xlsx"].map((fmt) =>
        h(
          "a",
          {
            href: `/api/v1/admin/exams/${encodeURIComponent(examId)}/export?what=${what}&format=${fmt}`,
            "data-what": what,
            "data-format": fmt,
            "aria-label": tr("导出{w}（{f}）", "Export {w} ({f})", { w: tr(zh, en), f: fmt.toUpperCase() }),
            onclick: async (e) => {
              // The export needs the bearer token, which a plain link cannot send.
              e.preventDefault();
              try {
                await session.download(e.currentTarget.getAttribute("href"), `${what}.${fmt}`);
              } catch (err) {
                clear(msg).append(h("p", { class: "note error" }, tr("导出失败：{m}", "Export failed: {m}", { m: err.message })));
              }
            },
          },
          fmt.toUpperCase(),
        ),
      ),
    ]),
  );

  const ruleText = data.rule === "mean" ? tr("平均分", "mean") : tr("去掉最高分和最低分后取平均（不少于 5 位考官时）", "trimmed mean (with at least 5 examiners)");
  root.append(
    heading ? h("p", {}, h("a", { href: "#exams" }, "← ", tr("考试列表", "Exams"))) : "",
    heading ? h("h2", {}, exam.title) : h("h3", {}, tr("成绩发布", "Results")),
    h("p", { class: "zone-note" }, zoneNote(exam.utc_offset_minutes)),
    h(
      "p",
      { class: "muted" },
      tr("计分规则：{r}；每人至少 {n} 位考官评分。", "Scoring rule: {r}; at least {n} examiners per candidate.", { r: ruleText, n: data.min_examiners ?? "—" }),
    ),
    h(
      "div",
      { class: "admin-actions" },
      data.published ? h("span", { class: "tag ok", id: "published" }, tr("已发布 {t}", "Published {t}", { t: dateTime(data.published_at) })) : publishBtn,
      data.published ? null : h("span", { class: "muted" }, tr("发布后考生可在成绩查询页查询成绩。", "After publishing candidates can look up their score.")),
    ),
    data.published ? reopenForm() : "",
    msg,
    h("h3", {}, tr("导出", "Exports")),
    exports,
    h("p", { class: "hint" }, tr("考生成绩查询页：", "Candidates' score lookup: "), h("a", { href: `/results/?exam=${encodeURIComponent(examId)}` }, `/results/?exam=${examId}`)),
    retention(data, dateTime),
    h("h3", {}, tr("成绩", "Results")),
    resultsTable(data.results || [], data.min_examiners),
  );
}

// Shown when the results carry `retention` (evidence.retention.status: retention_s, purge_at,
// purged_at, attempts_purged).
function retention(data, dateTime) {
  const r = data.retention;
  if (!r || typeof r !== "object") return "";
  const days = r.retention_s != null ? Math.round(r.retention_s / 86400) : null;
  return h(
    "section",
    { id: "retention" },
    h("h3", {}, tr("数据保存期限", "Retention")),
    h(
      "dl",
      { class: "facts wide" },
      h("dt", {}, tr("保存期限", "Kept for")),
      h("dd", {}, days == null ? "—" : tr("截止时间后 {d} 天", "{d} days after the deadline", { d: days })),
      h("dt", {}, tr("计划清除时间", "Purge due")),
      h("dd", {}, dateTime(r.purge_at)),
      h("dt", {}, tr("清除情况", "Purged")),
      h(
        "dd",
        {},
        r.purged_at
          ? tr("已于 {t} 清除 {n} 名考生的录像、截图和人脸数据", "Recordings, snapshots and face data of {n} candidates purged at {t}", { t: dateTime(r.purged_at), n: r.attempts_purged })
          : tr("尚未清除", "Not yet"),
      ),
    ),
  );
}

/** The examiners who scored; short of the rule's minimum, the final score is not final yet. */
function examinersCell(r, min) {
  const n = r.examiners ?? 0;
  const short = !r.absent && Number.isFinite(min) && n < min;
  return h(
    "td",
    { class: "num" },
    String(n),
    short ? h("span", { class: "short-note" }, tr("（未满 {min} 位，成绩暂定）", " (fewer than {min}: provisional)", { min })) : null,
  );
}

function resultsTable(results, minExaminers) {
  if (!results.length) return h("p", { class: "muted" }, tr("暂无考生。", "No candidates."));
  return h(
    "table",
    { class: "table", id: "results" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [tr("考场", "Room"), tr("签号", "Lot"), tr("准考证号", "Ticket"), tr("姓名", "Name"), tr("考官人数", "Examiners"), tr("各考官总分", "Totals"), tr("最终成绩", "Final score"), tr("裁定", "Ruling")].map((c) =>
          h("th", { scope: "col" }, c),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      results.map((r) =>
        h(
          "tr",
          { class: r.absent ? "absent" : "", "data-ticket": r.ticket },
          h("td", {}, r.room || ""),
          h("td", {}, r.lot == null ? "—" : String(r.lot)),
          h("td", {}, r.ticket),
          h("td", {}, r.name),
          examinersCell(r, minExaminers),
          h("td", {}, (r.totals || []).join(" / ")),
          h("td", { class: "num score" }, r.absent ? tr("缺考", "Absent") : r.score == null ? "—" : String(r.score)),
          h("td", {}, verdictLabel(r.verdict)),
        ),
      ),
    ),
  );
}
