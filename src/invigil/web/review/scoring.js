// Blind scoring (考官): candidates appear only by lot number — never name, ticket, photo or
// room. The examiner watches the webcam recording, scores each question on the exam's
// scale, and sees the other examiners' scores only after submitting their own.

import { clear, h } from "../shared/dom.js";
import { examTime, listZones, tr, zoneNote } from "../shared/i18n.js";
import { confirmDialog } from "../shared/confirm.js";
import { answerMarks, noAnswersHintFor, playerControls } from "./player.js";
import { SyncPlayer } from "./sync.js";

// Where the answer boundaries came from, in words an examiner understands.
function a0method(answers) {
  return answers[0].method === "keyword"
    ? tr("回答分段依据考生所说的「该题回答完毕」。", "Answers split where the candidate said 「该题回答完毕」.")
    : tr("回答分段依据语音停顿推断，可能有偏差。", "Answers split at pauses in speech; they may be off.");
}

export async function renderScoringExams(root, { api }) {
  const { exams } = await api.get("/api/v1/scoring/exams");
  const zones = listZones(exams);
  root.append(
    h("h2", {}, tr("评分", "Scoring")),
    exams.length ? h("p", { class: "zone-note", id: "zone-note" }, zones.note) : null,
    exams.length
      ? h(
          "table",
          { class: "table", id: "scoring-exams" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, tr("考试", "Exam")), h("th", { scope: "col" }, tr("开考时间", "Starts")), h("th", { scope: "col" }, tr("我的进度", "My progress")))),
          h("tbody", {}, exams.map((e) => h("tr", { "data-exam": e.id },
            h("td", {}, h("a", { href: `#scoring/${e.id}` }, e.title)),
            h("td", {}, zones.dateTime(e, e.starts_at)),
            h("td", { class: "progress" }, progressText(e))))),
        )
      : h("p", { class: "muted" }, tr("暂无需要评分的考试。", "No exams to score.")),
  );
}

// Before anyone hands in there is nothing to count: say so instead of 已评 0 / 0.
function progressText(e) {
  if (!e.sheets) return h("span", { class: "muted" }, tr("暂无交卷考生", "No one handed in yet"));
  const done = e.scored >= e.sheets;
  return h("span", { class: done ? "tag ok" : "tag" }, tr("已评 {d} / {n}", "Scored {d} of {n}", { d: e.scored, n: e.sheets }));
}

export async function renderSheets(root, { api }, examId) {
  const { sheets, exam } = await api.get(`/api/v1/scoring/exams/${encodeURIComponent(examId)}/sheets`);
  const done = sheets.filter((s) => s.submitted).length;
  root.append(
    h("p", {}, h("a", { href: "#scoring" }, "← ", tr("考试列表", "Exams"))),
    h("h2", {}, tr("评分", "Scoring"), exam && exam.title ? ` · ${exam.title}` : ""),
    h("p", { class: "muted" }, tr("已评 {d} / {n}", "Scored {d} of {n}", { d: done, n: sheets.length })),
    // During the exam the list is empty: say when candidates will come, not just nothing.
    sheets.length
      ? ""
      : h(
          "p",
          { class: "note", id: "no-sheets" },
          tr(
            "还没有可评分的考生。考生交卷或考试时间结束后，其答题录像按签号出现在这里。",
            "No one to score yet. Each candidate appears here by lot number once they hand in or time is up.",
          ),
        ),
    h(
      "table",
      { class: "table", id: "sheets" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, tr("签号", "Lot")), h("th", { scope: "col" }, tr("状态", "State")))),
      h(
        "tbody",
        {},
        sheets.map((s) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: `#sheet/${s.sheet_id}` }, tr("{n} 号", "No. {n}", { n: s.lot }))),
            h("td", {}, s.submitted ? h("span", { class: "tag ok" }, tr("已提交", "Submitted")) : h("span", { class: "tag" }, tr("未评分", "Not scored"))),
          ),
        ),
      ),
    ),
  );
}

export async function renderSheet(root, ctx, sheetId) {
  const { api, session } = ctx;
  const sheet = await api.get(`/api/v1/scoring/sheets/${encodeURIComponent(sheetId)}`);
  const recs = (sheet.recordings || []).map((r, i) => ({ ...r, id: r.id || `r${i}` }));
  const ms = (iso) => (iso ? Date.parse(iso) : NaN);
  const tz = (sheet.exam || {}).utc_offset_minutes;
  const questionsAt = ms(sheet.questions_at);
  const answers = answerMarks(sheet.answer_boundaries, questionsAt, (sheet.questions || []).length);
  let controls = null;
  const player = recs.length
    ? new SyncPlayer({
        streams: [{ kind: "webcam", label: tr("考生答题录像", "Answer recording"), recordings: recs }],
        resolveUrl: (url) => (/[?&]sig=/.test(url) ? Promise.resolve(url) : session.blobUrl(url)),
        onTime: (t) => controls && controls.update(t),
      })
    : null;
  // A sheet opens only after the exam, so the questions were released.
  if (player) controls = playerControls(player, { questionsAt, answers, noAnswersHint: noAnswersHintFor((sheet.audio || {}).state) });
  window.__review = player ? { state: () => player.state(), seek: (iso) => player.seek(ms(iso)), start: () => player.start } : {};
  const back = sheet.exam && sheet.exam.id ? `#scoring/${sheet.exam.id}` : "#scoring";

  const scoreBox = h("section", { class: "card score-card" });
  root.append(
    h("p", {}, h("a", { href: back }, "← ", tr("评分列表", "Sheets"))),
    h("h2", { id: "lot-title" }, tr("{n} 号考生", "Candidate No. {n}", { n: sheet.lot })),
    h(
      "div",
      { class: "review-layout" },
      h(
        "div",
        { class: "review-left" },
        player ? player.element : h("p", { class: "note warn" }, tr("没有录像。", "No recording.")),
        controls ? controls.element : null,
        answers.length
          ? h(
              "ul",
              { class: "boundaries", id: "answers" },
              answers.map((a) =>
                h(
                  "li",
                  {},
                  tr("第{n}题：{a} – {b}", "Answer {n}: {a} – {b}", {
                    n: a.number,
                    a: examTime(a.start, tz),
                    b: a.end != null ? examTime(a.end, tz) : tr("录像结束", "end of recording"),
                  }),
                ),
              ),
            )
          : null,
        answers.length ? h("p", { class: "hint" }, a0method(answers)) : null,
        answers.length ? h("p", { class: "zone-note", id: "zone-note" }, zoneNote(tz)) : null,
      ),
      h("div", { class: "review-right" }, scoreBox),
    ),
  );
  renderScores();

  function renderScores() {
    clear(scoreBox);
    const qs = sheet.questions || [];
    if (sheet.my_scores) {
      const total = sheet.my_scores.reduce((a, b) => a + Number(b), 0);
      scoreBox.append(
        h("h3", {}, tr("我的评分（已提交）", "My scores (submitted)")),
        h(
          "table",
          { class: "table" },
          h("thead", {}, h("tr", {}, h("th", {}, tr("题目", "Question")), h("th", {}, tr("我的评分", "Mine")), (sheet.others || []).map((o) => h("th", {}, o.examiner)))),
          h(
            "tbody",
            {},
            qs.map((q, i) =>
              h(
                "tr",
                {},
                h("td", {}, tr("第 {n} 题", "Question {n}", { n: q.position ?? i + 1 }), h("span", { class: "muted" }, ` / ${q.points}`)),
                h("td", { class: "num" }, String(sheet.my_scores[i])),
                (sheet.others || []).map((o) => h("td", { class: "num" }, String(o.scores[i] ?? "—"))),
              ),
            ),
            h("tr", { class: "total" }, h("td", {}, tr("合计", "Total")), h("td", { class: "num" }, String(total)), (sheet.others || []).map((o) => h("td", { class: "num" }, String(o.scores.reduce((a, b) => a + Number(b), 0))))),
          ),
        ),
      );
      return;
    }
    const inputs = qs.map((q, i) =>
      h("input", { type: "number", id: `score-${i + 1}`, min: "0", max: String(q.points), step: "0.5", required: true, inputmode: "decimal" }),
    );
    const msg = h("p", { class: "error", role: "status" });
    const form = h(
      "form",
      // The form's own check (below) says what is wrong in the page's language; the browser's
      // bubble would say it in the browser's ("Value must be less than or equal to 10.").
      { class: "score-form", novalidate: true },
      h("h3", {}, tr("评分", "Scores")),
      h("p", { class: "hint" }, tr("提交前看不到其他考官的评分；提交后不能修改。", "Other examiners' scores show only after you submit; a submission is final.")),
      qs.map((q, i) =>
        h(
          "div",
          { class: "question" },
          h("p", {}, h("strong", {}, tr("第 {n} 题", "Question {n}", { n: q.position ?? i + 1 })), " ", q.text),
          h("label", { for: `score-${i + 1}` }, tr("第 {n} 题得分（0–{p}）", "Score for question {n} (0–{p})", { n: q.position ?? i + 1, p: q.points })),
          inputs[i],
        ),
      ),
      msg,
      h("button", { type: "submit", class: "primary" }, tr("提交评分", "Submit scores")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      msg.textContent = "";
      const scores = [];
      for (const [i, inp] of inputs.entries()) {
        const v = Number(inp.value);
        if (inp.value === "" || Number.isNaN(v) || v < 0 || v > qs[i].points) {
          msg.textContent = tr("第 {n} 题的分数应在 0 到 {p} 之间。", "Question {n} takes 0 to {p} points.", { n: i + 1, p: qs[i].points });
          inp.focus();
          return;
        }
        scores.push(v);
      }
      const total = scores.reduce((a, b) => a + b, 0);
      if (!(await confirmDialog(tr("提交 {n} 号考生的评分（合计 {t} 分）？提交后不能修改。", "Submit the scores for No. {n} (total {t})? They cannot be changed.", { n: sheet.lot, t: total })))) return;
      try {
        await api.post(`/api/v1/scoring/sheets/${encodeURIComponent(sheetId)}/scores`, { scores });
      } catch (err) {
        if (err.code !== "already_submitted") return void (msg.textContent = err.message);
      }
      Object.assign(sheet, await api.get(`/api/v1/scoring/sheets/${encodeURIComponent(sheetId)}`));
      renderScores();
    });
    scoreBox.append(form);
  }

  return () => {
    if (player) player.destroy();
    delete window.__review;
  };
}
