// 考试管理: the exams with their counts (新建考试), one exam's page (edit, copy, delete, export,
// attachments with upload progress and preview, the audit history, its results) and the form
// with every field of the exam file (保存). Routes: #exams, #exams/new, #exam/ID, #exam/ID/edit.

import { clear, h } from "../shared/dom.js";
import { confirmDialog } from "../shared/confirm.js";
import { examDateTime, formatBytes, listZones, tr, zoneNote } from "../shared/i18n.js";
import { section as resultsSection } from "./results.js";
import { downloadWithProgress, progressBar, uploadWithProgress } from "./ui.js";

const API = "/api/v1/admin";
let schemaCache = null;
let flash = null; // a message to show once on the next page (e.g. 已保存)

export async function render(root, ctx) {
  if (ctx.route === "exams" && ctx.examId === "new") return examForm(root, ctx, null);
  if (ctx.route === "exam" && ctx.examId && ctx.parts[0] === "edit") return examForm(root, ctx, ctx.examId);
  if (ctx.route === "exam" && ctx.examId) return examPage(root, ctx);
  return list(root, ctx);
}

function schema(ctx) {
  if (!schemaCache) {
    schemaCache = ctx.api.get(`${API}/exam-schema`);
    schemaCache.catch(() => (schemaCache = null));
  }
  return schemaCache;
}

function showFlash(root) {
  if (!flash) return;
  root.append(h("p", { class: "note ok", role: "status", id: "flash" }, flash));
  flash = null;
}

// --- the list -----------------------------------------------------------------------------

async function list(root, ctx) {
  const exams = await ctx.exams();
  // Each exam's times in its own zone (as its candidates' desks show them).
  const zones = listZones(exams);
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
    h(
      "div",
      { class: "title-row" },
      h("h2", {}, tr("考试", "Exams")),
      h("button", { type: "button", class: "primary", id: "new-exam", "aria-label": "新建考试", onclick: () => ctx.go("#exams/new") }, tr("新建考试", "新建考试 New exam")),
    ),
  );
  showFlash(root);
  if (exams.length) root.append(h("p", { class: "zone-note", id: "zone-note" }, zones.note));
  root.append(
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
                h("td", {}, zones.dateTime(e, e.starts_at)),
                ...["candidates", "entered", "absent", "scored", "flagged", "violations"].map((k) => h("td", { class: "num" }, e[k] == null ? "—" : String(e[k]))),
                h("td", {}, e.published ? h("span", { class: "tag ok" }, tr("已发布", "Published")) : h("span", { class: "tag" }, tr("未发布", "Not published"))),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, tr("暂无考试。", "No exams.")),
  );
}

// --- one exam's page ----------------------------------------------------------------------

async function examPage(root, ctx) {
  const id = encodeURIComponent(ctx.examId);
  const { exam } = await ctx.api.get(`${API}/exams/${id}?questions=false`);
  const status = h("div", { id: "exam-status", role: "status" });
  const fail = (err) => clear(status).append(h("p", { class: "note error" }, err.message));

  async function remove() {
    const ok = await confirmDialog(tr("确定删除考试“{t}”？考场、考生、试题和附件将一并删除，无法恢复。", "Delete “{t}”? Its rooms, candidates, questions and attachments go with it, for good.", { t: exam.title }), { danger: true });
    if (!ok) return;
    try {
      await ctx.api.request("DELETE", `${API}/exams/${id}`);
      if (sessionStorage.getItem("invigil.admin.exam") === exam.id) sessionStorage.removeItem("invigil.admin.exam");
      flash = tr("已删除考试“{t}”。", "Deleted “{t}”.", { t: exam.title });
      ctx.go("#exams");
    } catch (err) {
      fail(err);
    }
  }

  // The package holds every photo: its download shows a progress bar.
  async function exportFile(kind) {
    const bar = progressBar(tr("导出进度", "Export progress"));
    clear(status).append(h("p", { class: "muted" }, tr("正在导出…", "Exporting…")), bar.el);
    bar.set(null);
    try {
      const path = `${API}/exams/${id}/${kind === "zip" ? "examfile.zip" : "examfile"}`;
      await downloadWithProgress(ctx.session, path, kind === "zip" ? "exam.zip" : "exam.yaml", (got, total) => bar.set(total ? got : null, total));
      clear(status).append(h("p", { class: "note ok", id: "export-done" }, tr("已导出。", "Exported.")));
    } catch (err) {
      fail(err);
    }
  }

  const actions = h(
    "div",
    { class: "admin-actions", id: "exam-actions" },
    h("button", { type: "button", class: "primary", id: "edit-exam", onclick: () => ctx.go(`#exam/${id}/edit`) }, tr("编辑", "Edit")),
    h("button", { type: "button", id: "import-roster", "aria-label": "导入考生", onclick: () => ctx.go(`#roster/${id}`) }, tr("导入考生", "导入考生 Import candidates")),
    h("button", { type: "button", id: "to-overview", "aria-label": "考务总览", onclick: () => ctx.go(`#overview/${id}`) }, tr("考务总览", "考务总览 Overview")),
    h("button", { type: "button", onclick: () => ctx.go(`#people/${id}`) }, tr("考场与人员", "Rooms & staff")),
    h("button", { type: "button", onclick: () => ctx.go(`#arrangements/${id}`) }, tr("个别安排", "Arrangements")),
    h("button", { type: "button", id: "export-yaml", onclick: () => exportFile("yaml") }, tr("导出考试文件", "Export exam file")),
    h("button", { type: "button", id: "export-zip", onclick: () => exportFile("zip") }, tr("导出考试包（含照片和附件）", "Export package (photos, attachments)")),
    h(
      "button",
      {
        type: "button",
        class: "danger",
        id: "delete-exam",
        disabled: !exam.deletable,
        title: exam.deletable ? null : tr("已有考生登录，不能删除", "Candidates have logged in: it cannot be deleted"),
        onclick: remove,
      },
      tr("删除", "Delete"),
    ),
  );

  root.append(
    h("p", {}, h("a", { href: "#exams" }, "← ", tr("考试列表", "Exams"))),
    h("h2", { id: "exam-title" }, exam.title),
    h(
      "dl",
      { class: "facts wide", id: "exam-facts" },
      h("dt", {}, tr("开考时间", "Starts")),
      h("dd", {}, localTime(exam.starts_at)),
      h("dt", {}, tr("考试时长", "Duration")),
      h("dd", {}, exam.duration),
      h("dt", {}, tr("人脸登录开放", "Face login opens")),
      h("dd", {}, localTime(exam.login_opens_at), exam.locked ? h("span", { class: "tag warn", id: "locked" }, tr("已开放：只能修改安全字段", "Open: only safe fields change")) : null),
      h("dt", {}, tr("考场 / 考生", "Rooms / candidates")),
      h("dd", {}, `${exam.rooms} / ${exam.candidates}`),
      h("dt", {}, tr("求助电话", "Help phone")),
      h("dd", {}, exam.help_phone || "—"),
    ),
    actions,
    status,
  );
  showFlash(status);
  root.append(copyForm(ctx, exam), attachmentsSection(ctx, exam), historySection(ctx, exam));
  const results = h("section", { id: "results-section" });
  root.append(results);
  await resultsSection(results, ctx, { heading: false });
}

/** "2030-06-10T09:30:00+08:00" as "2030-06-10 09:30 (UTC+08:00)": the exam's own local time. */
function localTime(iso) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2})?(Z|[+-]\d{2}:\d{2})$/.exec(iso || "");
  return m ? `${m[1]} ${m[2]} (UTC${m[3] === "Z" ? "+00:00" : m[3]})` : iso || "—";
}

function copyForm(ctx, exam) {
  const title = h("input", { id: "copy-title", value: tr("{t}（副本）", "{t} (copy)", { t: exam.title }), size: 40 });
  const start = startFields("copy", exam.starts_at);
  const withCandidates = h("input", { type: "checkbox", id: "copy-candidates" });
  const err = h("p", { class: "error", role: "status" });
  const form = h(
    "form",
    { class: "inline-form", id: "copy-form" },
    h("label", { for: "copy-title" }, tr("新考试名称", "New title")),
    title,
    h("label", { for: "copy-start" }, tr("新开考时间", "New start")),
    start.el,
    h("label", { class: "check" }, withCandidates, tr("连同考生（含照片和人脸数据）一起复制", "Copy the candidates too (photos and face data)")),
    h("p", { class: "hint" }, tr("复制试题、规则、附件、考场及考场工作人员；考生可选。", "Copies questions, rules, attachments, rooms and their staff; candidates if ticked.")),
    err,
    h("button", { type: "submit", id: "copy-exam" }, tr("复制", "Copy")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const startsAt = start.value();
    if (!title.value.trim()) return void (err.textContent = tr("请填写新考试名称。", "Please give a title."));
    if (!startsAt) return void (err.textContent = tr("请填写新开考时间。", "Please give a start."));
    if (!(await confirmDialog(tr("确定复制为“{t}”？", "Copy as “{t}”?", { t: title.value.trim() })))) return;
    try {
      const { exam: made } = await ctx.api.post(`${API}/exams/${encodeURIComponent(exam.id)}/copy`, { title: title.value.trim(), starts_at: startsAt, candidates: withCandidates.checked });
      flash = tr("已复制为“{t}”。", "Copied as “{t}”.", { t: made.title });
      ctx.go(`#exam/${encodeURIComponent(made.id)}`);
    } catch (e2) {
      err.textContent = problemsText(e2);
    }
  });
  return h("details", { class: "copy" }, h("summary", {}, tr("复制考试…", "Copy exam…")), form);
}

function attachmentsSection(ctx, exam) {
  const id = encodeURIComponent(exam.id);
  const listBox = h("ul", { class: "attachment-list", id: "attachments" });
  const preview = h("div", { class: "attachment-preview", id: "attachment-preview" });

  async function show(a) {
    clear(preview).append(h("p", { class: "muted" }, tr("正在打开…", "Opening…")));
    try {
      const url = await ctx.session.blobUrl(`${API}/exams/${id}/attachments/${encodeURIComponent(a.id)}`);
      const type = a.content_type || "";
      let body;
      if (type.startsWith("image/")) body = h("img", { src: url, alt: a.title });
      else if (type.startsWith("text/")) body = h("pre", { class: "text-file" }, await (await fetch(url)).text());
      else body = h("iframe", { src: url, title: a.title, class: "pdf" });
      clear(preview).append(h("h4", {}, tr("预览：{t}", "Preview: {t}", { t: a.title })), body);
    } catch (err) {
      clear(preview).append(h("p", { class: "note error" }, tr("打开失败：{m}", "Could not open: {m}", { m: err.message })));
    }
  }

  async function removeOne(a) {
    if (!(await confirmDialog(tr("确定删除附件“{t}”？", "Delete the attachment “{t}”?", { t: a.title }), { danger: true }))) return;
    try {
      await ctx.api.request("DELETE", `${API}/exams/${id}/attachments/${encodeURIComponent(a.id)}`);
      ctx.refresh();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  for (const a of exam.attachments) {
    listBox.append(
      h(
        "li",
        { "data-attachment": a.id },
        h("strong", {}, a.title),
        " ",
        h("span", { class: "muted" }, `${a.filename} · ${formatBytes(a.size)}`),
        " ",
        h("button", { type: "button", class: "small", "aria-label": tr("预览 {t}", "Preview {t}", { t: a.title }), onclick: () => show(a) }, tr("预览", "Preview")),
        exam.locked ? null : h("button", { type: "button", class: "small", "aria-label": tr("删除附件 {t}", "Delete attachment {t}", { t: a.title }), onclick: () => removeOne(a) }, tr("删除", "Delete")),
      ),
    );
  }
  if (!exam.attachments.length) listBox.append(h("li", { class: "muted" }, tr("暂无附件。", "No attachments.")));

  const title = h("input", { id: "attachment-title", size: 30 });
  const file = h("input", { id: "attachment-file", type: "file", accept: ".pdf,.png,.jpg,.jpeg,.gif,.webp,.txt,.md,application/pdf,image/*,text/plain" });
  const bar = progressBar(tr("附件上传进度", "Attachment upload"));
  bar.el.hidden = true;
  const error = h("p", { class: "error", role: "status", id: "attachment-error" });
  const form = h(
    "form",
    { class: "inline-form", id: "attachment-form" },
    h("label", { for: "attachment-title" }, tr("附件标题", "Attachment title")),
    title,
    h("label", { for: "attachment-file" }, tr("附件文件（PDF、图片或文本，不超过 20 MB）", "File (PDF, image or text, at most 20 MB)")),
    file,
    bar.el,
    error,
    h("button", { type: "submit", id: "upload-attachment" }, tr("上传附件", "Upload attachment")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const f = file.files && file.files[0];
    if (!title.value.trim()) return void (error.textContent = tr("请填写附件标题。", "Please give a title."));
    if (!f) return void (error.textContent = tr("请选择文件。", "Please choose a file."));
    if (f.size > 20 * 1024 * 1024) return void (error.textContent = tr("文件过大，不能超过 20 MB。", "The file is over 20 MB."));
    const body = new FormData();
    body.append("title", title.value.trim());
    body.append("file", f);
    bar.el.hidden = false;
    bar.set(0, f.size);
    form.querySelector("button[type=submit]").disabled = true;
    try {
      const { attachment } = await uploadWithProgress(ctx.session, "POST", `${API}/exams/${id}/attachments`, body, (sent, total) => bar.set(sent, total));
      bar.set(1, 1);
      flash = tr("附件“{t}”已上传。", "Attachment “{t}” uploaded.", { t: attachment.title });
      await ctx.refresh();
      const again = document.querySelector(`[data-attachment="${attachment.id}"] button`);
      if (again) again.click(); // show what was uploaded
    } catch (err) {
      error.textContent = problemsText(err);
      bar.el.hidden = true;
      form.querySelector("button[type=submit]").disabled = false;
    }
  });
  return h(
    "section",
    { id: "attachments-section" },
    h("h3", {}, tr("考试附件", "Attachments")),
    listBox,
    exam.locked ? h("p", { class: "hint" }, tr("人脸登录已开放，附件不能再增删。", "Face login is open: attachments no longer change.")) : form,
    preview,
  );
}

const ACTIONS = {
  exam_create: ["创建", "Created"],
  exam_edit: ["修改", "Edited"],
  exam_copy: ["由复制创建", "Created as a copy"],
  exam_read: ["查看（含试题）", "Read (with questions)"],
  exam_export: ["导出", "Exported"],
  exam_attachment_add: ["上传附件", "Attachment added"],
  exam_attachment_edit: ["附件改名", "Attachment renamed"],
  exam_attachment_del: ["删除附件", "Attachment deleted"],
};

function changeText(field, c) {
  const show = (v) => {
    if (v == null || v === "") return "—";
    if (field === "questions") return tr("{n} 题（分值 {p}）", "{n} questions (points {p})", { n: v.count, p: (v.points || []).join("/") });
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  };
  return `${field}: ${show(c.before)} → ${show(c.after)}`;
}

function historySection(ctx, exam) {
  const box = h("div", { id: "history" });
  const details = h("details", { class: "history" }, h("summary", {}, tr("修改记录（审计）", "Change history (audit)")), box);
  details.addEventListener("toggle", async () => {
    if (!details.open || box.dataset.loaded) return;
    box.dataset.loaded = "1";
    try {
      const { entries } = await ctx.api.get(`${API}/exams/${encodeURIComponent(exam.id)}/history`);
      const shown = entries.filter((e) => e.action !== "exam_read").reverse();
      box.append(
        h(
          "table",
          { class: "table", id: "history-table" },
          h("thead", {}, h("tr", {}, [tr("时间", "When"), tr("人员", "Who"), tr("操作", "What"), tr("内容", "Detail")].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            shown.map((e) => {
              const [zh, en] = ACTIONS[e.action] || [e.action, e.action];
              const changes = (e.detail && e.detail.changes) || {};
              const lines = Object.entries(changes).map(([f, c]) => changeText(f, c));
              if (!lines.length && e.detail && e.detail.title) lines.push(e.detail.title);
              return h("tr", { "data-action": e.action }, h("td", {}, examDateTime(e.at, exam.utc_offset_minutes)), h("td", {}, e.staff), h("td", {}, tr(zh, en)), h("td", { class: "data" }, lines.map((l) => h("div", {}, l))));
            }),
          ),
        ),
        h("p", { class: "hint" }, tr("另有 {n} 次查看记录（含试题）。", "Plus {n} reads (with questions).", { n: entries.length - shown.length })),
        h("p", { class: "zone-note" }, zoneNote(exam.utc_offset_minutes)),
      );
    } catch (err) {
      box.append(h("p", { class: "note error" }, err.message));
    }
  });
  return details;
}

// --- the form -----------------------------------------------------------------------------

const OFFSETS = ["+08:00", "+09:00", "+07:00", "+05:30", "+00:00", "+01:00", "+02:00", "-05:00", "-08:00"];

/** A datetime-local input and a time zone select, read together as ISO 8601 with offset. */
function startFields(prefix, iso) {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(?::\d{2})?([+-]\d{2}:\d{2}|Z)?$/.exec(iso || "");
  const local = h("input", { type: "datetime-local", id: `${prefix}-start`, value: m ? m[1] : "" });
  const off = m ? (m[2] === "Z" ? "+00:00" : m[2]) : "+08:00";
  const zone = h(
    "select",
    { id: `${prefix}-zone`, "aria-label": tr("时区", "Time zone") },
    [...new Set([off, ...OFFSETS])].map((o) => h("option", { value: o, selected: o === off }, `UTC${o}`)),
  );
  return {
    el: h("span", { class: "start-fields" }, local, " ", zone),
    local,
    zone,
    value: () => (local.value ? `${local.value}:00${zone.value}`.replace(/(T\d{2}:\d{2}:\d{2}):00/, "$1") : ""),
  };
}

function problemsText(err) {
  const problems = (err.body && err.body.problems) || [];
  return problems.length ? problems.map((p) => p.message).join("；") : err.message;
}

async function examForm(root, ctx, examId) {
  const sch = await schema(ctx);
  const exam = examId ? (await ctx.api.get(`${API}/exams/${encodeURIComponent(examId)}`)).exam : null;
  const v = exam || { title: "", starts_at: "", duration: "20m", rules: {}, help_phone: "", practice: false, scoring: { rule: "trimmed_mean", min_examiners: null }, flags: {}, questions: [{ text: "", points: sch.default_points }] };
  const locked = !!(exam && exam.locked);
  const safe = new Set(sch.safe_after_login);
  const canEdit = (field) => !locked || safe.has(field);
  const errors = new Map(); // field -> element for its message

  function errorSlot(field) {
    const el = h("p", { class: "field-error", role: "status", id: `err-${field.replace(/\./g, "-")}` });
    errors.set(field, el);
    return el;
  }

  function row(field, label, input, hint) {
    if (!canEdit(field)) input.disabled = true;
    for (const el of input.querySelectorAll ? input.querySelectorAll("input,select,textarea") : []) if (!canEdit(field)) el.disabled = true;
    const id = input.id || (input.querySelector && input.querySelector("input,select,textarea") || {}).id;
    return h("div", { class: "field", "data-field": field }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint" }, hint) : null, errorSlot(field));
  }

  const title = h("input", { id: "f-title", value: v.title, size: 50, required: true });
  const start = startFields("f", v.starts_at);
  const duration = h("input", { id: "f-duration", value: v.duration, size: 10, placeholder: "20m" });
  const phone = h("input", { id: "f-phone", value: v.help_phone || "", size: 20 });
  const practice = h("input", { type: "checkbox", id: "f-practice", checked: !!v.practice });

  const ruleInputs = {};
  const rules = sch.rules.map((r) => {
    const current = (v.rules || {})[r.key];
    let input;
    if (r.kind === "switch") {
      input = h("select", { id: `f-rule-${r.key}` }, r.choices.map((c) => h("option", { value: c, selected: (current || r.default) === c }, c === "required" ? tr("required（要求）", "required") : tr("off（关闭）", "off"))));
    } else {
      input = h("input", { id: `f-rule-${r.key}`, value: current && current !== r.default ? current : "", placeholder: r.default, size: 8 });
    }
    ruleInputs[r.key] = { input, rule: r };
    return row(`rules.${r.key}`, `${tr(r.name_zh, r.name_en)}（${r.key}）`, input, `${tr(r.zh, r.en)}${tr("；默认 {d}", "; default {d}", { d: r.default })}`);
  });

  const scoringRule = h("select", { id: "f-scoring-rule" }, sch.scoring_rules.map((s) => h("option", { value: s, selected: (v.scoring || {}).rule === s }, s === "mean" ? tr("平均分（mean）", "mean") : tr("去掉最高最低分后平均（trimmed_mean）", "trimmed mean"))));
  const minExaminers = h("input", { id: "f-scoring-min", type: "number", min: 1, max: 100, value: (v.scoring || {}).min_examiners ?? "", placeholder: tr("全部", "all"), "aria-label": tr("每人最少考官数", "Examiners needed per candidate") });

  // Flag overrides: empty means the default (the server's).
  const flagInputs = [];
  const flagRows = sch.flags.map((f) => {
    const cur = (v.flags || {})[f.flag] || {};
    const sev = h("select", { "aria-label": `${f.flag} severity`, "data-flag": f.flag, "data-param": "severity" }, h("option", { value: "" }, tr("默认（{d}）", "default ({d})", { d: f.severity })), sch.severities.map((s) => h("option", { value: s, selected: cur.severity === s }, s)));
    flagInputs.push(sev);
    const params = f.params.map((p) => {
      const input = h("input", { size: 6, "aria-label": `${f.flag} ${p.key}`, "data-flag": f.flag, "data-param": p.key, "data-kind": p.kind, value: cur[p.key] ?? "", placeholder: p.default == null ? "" : String(p.default), title: `${p.min}–${p.max}` });
      flagInputs.push(input);
      // By name, with the exam file's key beside it for whoever edits the file.
      return h("label", { class: "param" }, `${tr(p.name_zh, p.name_en)} `, h("code", { class: "param-key" }, p.key), " ", input);
    });
    return h("tr", {}, h("td", {}, h("code", {}, f.flag), h("div", { class: "hint" }, tr(f.zh, f.en))), h("td", {}, sev), h("td", {}, params));
  });
  const flagsTable = h("table", { class: "table flags-table", id: "f-flags" }, h("thead", {}, h("tr", {}, [tr("标记", "Flag"), tr("级别", "Severity"), tr("参数（留空为默认）", "Parameters (empty: default)")].map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, flagRows));
  if (!canEdit("flags")) for (const i of flagInputs) i.disabled = true;

  const questionsBox = h("ol", { class: "questions", id: "f-questions" });
  function addQuestion(q) {
    const text = h("textarea", { rows: 3, cols: 60, class: "q-text", "aria-label": tr("题目内容", "Question text") });
    text.value = q.text || "";
    const points = h("input", { type: "number", min: 1, max: 1000, class: "q-points", value: q.points ?? sch.default_points, "aria-label": tr("分值", "Points") });
    const del = h("button", { type: "button", class: "small", onclick: () => li.remove() }, tr("删除此题", "Remove"));
    const li = h("li", { class: "question" }, text, h("label", { class: "param" }, tr("分值 ", "Points "), points), del, h("p", { class: "field-error q-error", role: "status" }));
    if (!canEdit("questions")) for (const el of [text, points, del]) el.disabled = true;
    questionsBox.append(li);
  }
  for (const q of v.questions || []) addQuestion(q);
  const addBtn = h("button", { type: "button", id: "add-question", disabled: !canEdit("questions"), onclick: () => addQuestion({ text: "", points: sch.default_points }) }, tr("添加试题", "Add question"));

  const formError = h("div", { id: "form-error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary", id: "save-exam", "aria-label": "保存" }, tr("保存", "保存 Save"));
  const form = h(
    "form",
    { class: "exam-form card", id: "exam-form", novalidate: true },
    h("h3", {}, tr("基本信息", "Basics")),
    row("title", tr("考试名称", "Title"), title),
    row("starts_at", tr("开考时间（含时区）", "Start (with time zone)"), start.el, tr("考试开始的时刻 T；各规则都相对于它。", "The start T; every rule counts from it.")),
    row("duration", tr("考试时长", "Duration"), duration, tr("如 20m、1h、1h30m", "e.g. 20m, 1h, 1h30m")),
    row("help_phone", tr("求助电话", "Help phone"), phone, tr("考生遇到问题时拨打的电话，显示在考生页面。", "Shown to candidates for help.")),
    row("practice", tr("模拟考试", "Practice exam"), h("span", {}, practice, " ", tr("不需报名照片，考生首次登录的人脸作为比对基准", "no enrolment photos; the first login face becomes the reference"))),
    h("h3", {}, tr("考试规则", "Rules")),
    h("p", { class: "hint" }, tr("留空即为默认值。时长写法如 30m、45s、1h、180d。", "Empty means the default. Durations like 30m, 45s, 1h, 180d.")),
    rules,
    h("h3", {}, tr("评分", "Scoring")),
    row("scoring", tr("计分规则", "Scoring rule"), h("span", {}, scoringRule, " ", tr("每人最少考官数 ", "examiners needed "), minExaminers)),
    h("h3", {}, tr("疑似违纪标记设置", "Flag settings")),
    h("p", { class: "hint" }, tr("覆盖服务器默认值，只填需要改的项。", "Overrides of the server's defaults; fill only what changes.")),
    flagsTable,
    errorSlot("flags"),
    h("h3", {}, tr("试题", "Questions")),
    h("p", { class: "hint" }, tr("试题在开考时刻 T 才向考生发放；开考前只有管理员在此可见（每次查看都记入审计）。", "Questions reach candidates at T; before that only admins see them here (each read is audited).")),
    questionsBox,
    errorSlot("questions"),
    addBtn,
    formError,
    h("div", { class: "form-actions" }, save, h("a", { href: exam ? `#exam/${encodeURIComponent(exam.id)}` : "#exams" }, tr("取消", "Cancel"))),
  );
  if (!canEdit("title")) title.disabled = true;
  if (!canEdit("starts_at")) start.local.disabled = start.zone.disabled = true;

  function collect() {
    const rulesOut = {};
    for (const [key, { input, rule }] of Object.entries(ruleInputs)) rulesOut[key] = input.value.trim() || rule.default;
    const flags = {};
    for (const input of flagInputs) {
      const value = input.value.trim();
      if (!value) continue;
      const f = (flags[input.dataset.flag] ||= {});
      const param = input.dataset.param;
      if (param === "severity" || (input.dataset.kind === "seconds" && /[dhms]/.test(value))) f[param] = value;
      else f[param] = Number(value);
    }
    const questions = [...questionsBox.querySelectorAll("li.question")].map((li) => ({ text: li.querySelector(".q-text").value.trim(), points: Number(li.querySelector(".q-points").value) }));
    return {
      title: title.value.trim(),
      starts_at: start.value(),
      duration: duration.value.trim(),
      rules: rulesOut,
      help_phone: phone.value.trim(),
      practice: practice.checked,
      scoring: { rule: scoringRule.value, min_examiners: minExaminers.value ? Number(minExaminers.value) : null },
      flags,
      questions,
    };
  }

  function showProblems(problems) {
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    clear(formError);
    const items = [...questionsBox.querySelectorAll("li.question")];
    for (const p of problems) {
      const q = /^questions\.(\d+)$/.exec(p.field);
      const slot = q && items[Number(q[1]) - 1] ? items[Number(q[1]) - 1].querySelector(".q-error") : errors.get(p.field) || errors.get(p.field.split(".")[0]);
      if (slot) slot.textContent = slot.textContent ? `${slot.textContent}；${p.message}` : p.message;
    }
    if (problems.length) {
      formError.append(h("p", { class: "note error" }, tr("有 {n} 处需要修改，见各项下方的红字。", "{n} problems: see the red text below each field.", { n: problems.length })));
      const first = [...form.querySelectorAll(".field-error")].find((el) => el.textContent);
      if (first) first.scrollIntoView({ block: "center" });
    }
  }

  // What the page can tell before asking the server.
  function localProblems(body) {
    const out = [];
    if (!body.title) out.push({ field: "title", message: tr("必填：请填写考试名称", "Required: the title") });
    if (!body.starts_at) out.push({ field: "starts_at", message: tr("必填：请选择开考时间", "Required: the start") });
    if (!body.duration) out.push({ field: "duration", message: tr("必填：请填写考试时长，如 20m", "Required: the duration, e.g. 20m") });
    if (!body.questions.length) out.push({ field: "questions", message: tr("至少需要一道试题", "At least one question") });
    body.questions.forEach((q, i) => {
      if (!q.text) out.push({ field: `questions.${i + 1}`, message: tr("第 {n} 题：题目内容不能为空", "Question {n}: the text is empty", { n: i + 1 }) });
    });
    return out;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = collect();
    const local = localProblems(body);
    showProblems(local);
    if (local.length) return;
    save.disabled = true;
    try {
      const res = exam ? await ctx.api.request("PATCH", `${API}/exams/${encodeURIComponent(exam.id)}`, { json: body }) : await ctx.api.post(`${API}/exams`, body);
      flash = exam
        ? res.changed && res.changed.length
          ? tr("已保存，修改了：{f}。", "Saved; changed: {f}.", { f: res.changed.join("、") })
          : tr("没有修改。", "Nothing changed.")
        : tr("考试已创建。", "Exam created.");
      ctx.go(`#exam/${encodeURIComponent(res.exam.id)}`);
    } catch (err) {
      save.disabled = false;
      const problems = (err.body && err.body.problems) || [];
      if (problems.length && problems.every((p) => p.message)) showProblems(problems);
      else {
        showProblems([]);
        formError.append(h("p", { class: "note error" }, err.message));
      }
    }
  });

  root.append(
    h("p", {}, h("a", { href: exam ? `#exam/${encodeURIComponent(exam.id)}` : "#exams" }, "← ", exam ? exam.title : tr("考试列表", "Exams"))),
    h("h2", {}, exam ? tr("编辑考试", "Edit exam") : tr("新建考试", "New exam")),
    locked
      ? h("p", { class: "note warn", id: "locked-note" }, tr("人脸登录已开放，考试已在进行：只能修改求助电话、疑似违纪标记设置、评分规则和保存期限（retention）。", "Face login is open: only the help phone, flag settings, scoring and retention may change."))
      : "",
    form,
  );
  title.focus();
}
