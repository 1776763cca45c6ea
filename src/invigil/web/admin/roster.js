// 考生导入: a roster (XLSX/CSV) and its photos (ZIP) → upload → 检查 (a server job; the bar
// follows its progress) → every problem in one table (行, 列, 问题, 如何修改), or a preview of
// the difference (added, changed, removed) → 确认导入 (确定/取消) → applied. The page picks up
// an import still running or waiting for 确认导入 when it is opened again.

import { clear, h } from "../shared/dom.js";
import { confirmDialog } from "../shared/confirm.js";
import { currentLang } from "../shared/i18n.js";
import { progressBar, uploadWithProgress } from "./ui.js";

const POLL_MS = 700;

export async function render(root, ctx) {
  const { api, session, tr, examId } = ctx;
  const base = `/api/v1/admin/exams/${encodeURIComponent(examId)}/roster`;
  const info = await api.get(base);
  const en = currentLang() === "en";

  const status = h("div", { id: "roster-status" });
  const rooms = info.rooms.map((r) => (r.id === r.name ? r.id : `${r.id} ${r.name}`)).join(tr("、", ", ")) || tr("（无）", "(none)");

  const rosterInput = h("input", { type: "file", id: "roster-file", name: "roster", accept: ".xlsx,.csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,text/csv", required: true });
  const photosInput = h("input", { type: "file", id: "photos-file", name: "photos", accept: ".zip,application/zip" });
  const submit = h("button", { type: "submit", class: "primary", id: "roster-submit" }, tr("导入考生", "导入考生 Import"));
  const form = h(
    "form",
    { class: "roster-form", id: "roster-form", onsubmit: (e) => (e.preventDefault(), upload()) },
    h("div", { class: "field" }, h("label", { for: "roster-file" }, tr("考生名单 (XLSX/CSV)", "考生名单 Roster (XLSX/CSV)")), rosterInput),
    h("div", { class: "field" }, h("label", { for: "photos-file" }, tr("照片压缩包 (ZIP)", "照片压缩包 Photos (ZIP)")), photosInput),
    h("p", { class: "muted" }, tr("再次导入时可不传照片压缩包：名单中已有考生保留原照片。", "On a re-import the ZIP may be left out: candidates already listed keep their photos.")),
    submit,
  );

  const download = (fmt) =>
    h(
      "button",
      { type: "button", class: "link", onclick: () => session.download(`/api/v1/admin/roster/template?format=${fmt}`, `考生名单模板.${fmt}`) },
      tr("下载模板", "下载模板 Template") + ` (${fmt.toUpperCase()})`,
    );

  const candidates = h("div", { id: "roster-candidates" });
  drawCandidates(candidates, info.candidates, tr);

  const parts = [
    h("h2", {}, tr("考生导入", "Roster import"), " · ", info.exam.title),
    info.locked ? h("p", { class: "note error", role: "alert" }, info.locked) : null,
    h(
      "section",
      { class: "roster-help" },
      h("p", {}, tr("名单列：准考证号、姓名、考场、照片文件名。照片文件名对应照片压缩包中的文件（不区分大小写，可带文件夹）；留空时按“准考证号.jpg”查找。", "Columns: 准考证号 (ticket), 姓名 (name), 考场 (room), 照片文件名 (photo file). Photo names match files in the ZIP (any case, folders optional); when empty, “ticket.jpg” is looked for.")),
      h("p", {}, tr("考场须为本场考试已有的考场（编号或名称）：{rooms}。导入不会新建考场，新考场请先在「考场与人员」中添加。", "Rooms must exist in this exam (id or name): {rooms}. Importing never creates rooms; add new ones under Rooms & staff first.", { rooms })),
      h("p", { class: "admin-actions" }, download("xlsx"), " ", download("csv")),
    ),
    info.locked ? null : form,
    status,
    candidates,
  ];
  clear(root).append(...parts.filter(Boolean));

  if (info.latest && ["checking", "applying", "invalid", "ready"].includes(info.latest.state)) follow(info.latest);

  async function upload() {
    if (!rosterInput.files.length) return;
    const body = new FormData();
    body.append("roster", rosterInput.files[0]);
    if (photosInput.files.length) body.append("photos", photosInput.files[0]);
    submit.disabled = true;
    const bar = progressBar(tr("上传进度", "Upload progress"));
    clear(status).append(h("h3", {}, tr("上传", "Upload")), bar.el);
    try {
      const started = await uploadWithProgress(session, "POST", base, body, (sent, total) => bar.set(sent, total));
      follow(started);
    } catch (err) {
      clear(status).append(h("p", { class: "note error", role: "alert" }, err.message));
    } finally {
      submit.disabled = false;
    }
  }

  // Poll the import until its job is done, drawing the bar, then its result.
  function follow(imp) {
    const bar = progressBar(imp.state === "applying" ? tr("导入进度", "Import progress") : tr("检查进度", "Check progress"));
    const heading = imp.state === "applying" ? tr("导入中", "Importing") : tr("检查", "Check");
    const note = imp.state === "applying" ? tr("正在保存照片和考生……", "Saving photos and candidates…") : tr("正在检查名单和每张照片中的人脸（每张约 0.1–0.3 秒）……", "Checking the roster and the face in every photo (about 0.1–0.3 s each)…");
    const step = async (current) => {
      if (!root.isConnected) return;
      if (current.state === "checking" || current.state === "applying") {
        if (!status.contains(bar.el)) clear(status).append(h("h3", {}, heading), bar.el, h("p", { class: "muted" }, note));
        bar.set(current.total ? current.done : null, current.total);
        setTimeout(async () => {
          try {
            step(await api.get(`/api/v1/admin/roster-imports/${encodeURIComponent(current.id)}`));
          } catch (err) {
            if (err.status !== 401) clear(status).append(h("p", { class: "note error", role: "alert" }, err.message));
          }
        }, POLL_MS);
        return;
      }
      showResult(current);
    };
    step(imp);
  }

  function showResult(imp) {
    clear(status);
    if (imp.state === "invalid") {
      status.append(
        h("h3", {}, tr("检查结果", "Check result")),
        h("p", { class: "note error", role: "alert", id: "roster-verdict" }, verdictText(imp)),
        problemTable(imp.problems),
      );
    } else if (imp.state === "ready") {
      status.append(h("h3", {}, tr("检查结果", "Check result")), preview(imp));
    } else if (imp.state === "applied") {
      const a = imp.applied || {};
      status.append(h("p", { class: "note ok", role: "status", id: "roster-verdict" }, tr("导入完成：新增 {a} 人，变更 {c} 人，删除 {r} 人。", "Imported: {a} added, {c} changed, {r} removed.", { a: a.added || 0, c: a.changed || 0, r: a.removed || 0 })));
      api.get(base).then((fresh) => drawCandidates(candidates, fresh.candidates, tr));
    } else if (imp.state === "failed") {
      status.append(h("p", { class: "note error", role: "alert", id: "roster-verdict" }, imp.message || tr("导入失败。", "The import failed.")));
    }
  }

  // The count matches the table: its 提示 rows are named apart from the problems to fix.
  function verdictText(imp) {
    const notes = (imp.problems || []).filter((p) => p.warning).length;
    return notes
      ? tr("发现 {n} 处问题（另有 {w} 条提示），未导入任何内容。请改正后重新上传。", "{n} problems found (and {w} notes); nothing was imported. Fix them and upload again.", { n: imp.errors, w: notes })
      : tr("发现 {n} 处问题，未导入任何内容。请改正后重新上传。", "{n} problems found; nothing was imported. Fix them and upload again.", { n: imp.errors });
  }

  function problemTable(problems) {
    return h(
      "table",
      { class: "table", id: "roster-problems" },
      h("thead", {}, h("tr", {}, [tr("行", "Row"), tr("列", "Column"), tr("问题", "Problem"), tr("如何修改", "How to fix")].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        problems.map((p) =>
          h(
            "tr",
            { class: p.warning ? "warning" : "error", "data-code": p.code },
            h("td", { class: "num" }, p.row == null ? "—" : String(p.row)),
            h("td", {}, (en ? p.column_en : p.column) || "—"),
            h("td", {}, p.warning ? h("span", { class: "tag" }, tr("提示", "Note")) : null, p.warning ? " " : null, en ? p.message_en : p.message),
            h("td", {}, en ? p.fix_en : p.fix),
          ),
        ),
      ),
    );
  }

  function preview(imp) {
    const d = imp.diff;
    const box = h("div", { id: "roster-preview" });
    box.append(
      h("p", { class: "note ok", id: "roster-verdict" }, tr("名单无误（{rows} 名考生）。导入将：新增 {a} 人，变更 {c} 人，删除 {r} 人，不变 {u} 人。", "The roster is clean ({rows} candidates). Importing will add {a}, change {c}, remove {r}; {u} unchanged.", { rows: imp.rows, a: d.added.length, c: d.changed.length, r: d.removed.length, u: d.unchanged })),
    );
    if (imp.warnings) box.append(problemTable(imp.problems));
    const list = (title, id, items, cols, cells) =>
      items.length
        ? h("details", { open: items.length <= 20 }, h("summary", {}, `${title}（${items.length}）`), h("table", { class: "table", id }, h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, items.map((x) => h("tr", {}, cells(x).map((v) => h("td", {}, v)))))))
        : null;
    const ticketCols = [tr("准考证号", "Ticket"), tr("姓名", "Name"), tr("考场", "Room")];
    const lists = [
      list(tr("新增", "Added"), "diff-added", d.added, ticketCols, (x) => [x.ticket, x.name, x.room]),
      list(tr("变更", "Changed"), "diff-changed", d.changed, [tr("准考证号", "Ticket"), tr("姓名", "Name"), tr("变更内容", "Changes")], (x) => [x.ticket, x.name, describe(x.changes, tr)]),
      list(tr("删除", "Removed"), "diff-removed", d.removed, ticketCols, (x) => [x.ticket, x.name, x.room]),
    ];
    box.append(...lists.filter(Boolean));
    const apply = h("button", { type: "button", class: "primary", id: "roster-apply", disabled: !imp.can_apply }, tr("确认导入", "确认导入 Confirm import"));
    apply.addEventListener("click", async () => {
      const ok = await confirmDialog(tr("确认导入？将新增 {a} 人，变更 {c} 人，删除 {r} 人。", "Import now? {a} added, {c} changed, {r} removed.", { a: d.added.length, c: d.changed.length, r: d.removed.length }), { danger: d.removed.length > 0 });
      if (!ok) return;
      apply.disabled = true;
      try {
        follow(await api.post(`/api/v1/admin/roster-imports/${encodeURIComponent(imp.id)}/apply`));
      } catch (err) {
        apply.disabled = false;
        box.append(h("p", { class: "note error", role: "alert" }, err.message));
      }
    });
    if (imp.locked) box.append(h("p", { class: "note error", role: "alert" }, imp.locked));
    box.append(h("p", { class: "admin-actions" }, apply));
    return box;
  }
}

function describe(changes, tr) {
  const parts = [];
  if (changes.name) parts.push(tr("姓名 {a} → {b}", "name {a} → {b}", { a: changes.name[0], b: changes.name[1] }));
  if (changes.room) parts.push(tr("考场 {a} → {b}", "room {a} → {b}", { a: changes.room[0], b: changes.room[1] }));
  if (changes.photo) parts.push(tr("新照片", "new photo"));
  return parts.join(tr("；", "; "));
}

function drawCandidates(box, list, tr) {
  clear(box).append(
    h("h3", {}, tr("本场考生（{n} 人）", "Candidates of this exam ({n})", { n: list.length })),
    list.length
      ? h(
          "table",
          { class: "table", id: "candidates" },
          h("thead", {}, h("tr", {}, [tr("准考证号", "Ticket"), tr("姓名", "Name"), tr("考场", "Room"), tr("报名照片", "Photo")].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, list.map((c) => h("tr", {}, h("td", {}, c.ticket), h("td", {}, c.name), h("td", {}, c.room), h("td", {}, c.photo ? tr("有", "yes") : tr("无", "none"))))),
        )
      : h("p", { class: "muted" }, tr("还没有考生。", "No candidates yet.")),
  );
}
