// 考试管理: the exams with their counts (新建考试), one exam's page (its actions and results).

import { h } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";
import { dateTime } from "../review/labels.js";
import { section as resultsSection } from "./results.js";

export async function render(root, ctx) {
  if (ctx.route === "exam" && ctx.examId) return examPage(root, ctx);
  return list(root, ctx);
}

async function list(root, ctx) {
  const exams = await ctx.exams();
  const cols = [
    tr("考试", "Exam"),
    tr("开考时间", "Starts"),
    tr("考生", "Candidates"),
    tr("入场", "Entered"),
    tr("缺考", "Absent"),
    tr("已评分", "Scored"),
    tr("疑似违纪", "Flagged"),
    tr("违纪", "Violations"),
    tr("成绩", "Scores"),
  ];
  root.append(
    h("div", { class: "title-row" }, h("h2", {}, tr("考试", "Exams")), h("button", { type: "button", class: "primary", id: "new-exam", onclick: () => ctx.go("#exams/new") }, tr("新建考试", "新建考试 New exam"))),
    exams.length
      ? h(
          "table",
          { class: "table", id: "exams" },
          h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            exams.map((e) =>
              h(
                "tr",
                { "data-exam": e.id },
                h("td", {}, h("a", { href: `#exam/${encodeURIComponent(e.id)}` }, e.title)),
                h("td", {}, dateTime(e.starts_at)),
                ...["candidates", "entered", "absent", "scored", "flagged", "violations"].map((k) => h("td", { class: "num" }, e[k] == null ? "—" : String(e[k]))),
                h("td", {}, e.published ? h("span", { class: "tag ok" }, tr("已发布", "Published")) : h("span", { class: "tag" }, tr("未发布", "Not published"))),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, tr("暂无考试。", "No exams.")),
  );
}

async function examPage(root, ctx) {
  const id = encodeURIComponent(ctx.examId);
  const actions = h(
    "div",
    { class: "admin-actions", id: "exam-actions" },
    h("button", { type: "button", id: "import-roster", onclick: () => ctx.go(`#roster/${id}`) }, tr("导入考生", "导入考生 Import candidates")),
    h("button", { type: "button", id: "to-overview", onclick: () => ctx.go(`#overview/${id}`) }, tr("考务总览", "考务总览 Overview")),
    h("button", { type: "button", onclick: () => ctx.go(`#people/${id}`) }, tr("考场与人员", "Rooms & staff")),
    h("button", { type: "button", onclick: () => ctx.go(`#arrangements/${id}`) }, tr("个别安排", "Arrangements")),
  );
  const box = h("div");
  root.append(actions, box);
  await resultsSection(box, ctx);
}
