// Triage (分拣): an exam's candidates ordered by suspected violations — kind, count, highest
// confidence — with filters; absent candidates and missing uploads are listed too.

import { clear, h } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";
import { kindLabel, stageLabel, verdictLabel } from "./labels.js";

const filters = { exam: null, kind: "", room: "", min_confidence: "", only_flagged: false };

export async function renderTriage(root, { api }, examId) {
  // Filters stay while moving between the list and candidates, not across exams.
  if (filters.exam !== examId) Object.assign(filters, { exam: examId, kind: "", room: "", min_confidence: "", only_flagged: false });
  const exam = (await api.get("/api/v1/review/exams")).exams.find((e) => e.id === examId);
  const title = h("h2", {}, tr("分拣", "Triage"), " · ", exam ? exam.title : examId);
  const summary = h("p", { class: "muted", id: "triage-summary" });
  const body = h("div", {});
  let rooms = null;

  // Options: every flag kind present in the exam (from the server), filled on first load.
  const kindSel = h("select", { id: "f-kind" }, h("option", { value: "" }, tr("全部类型", "All kinds")));
  let kinds = null;
  const roomSel = h("select", { id: "f-room" }, h("option", { value: "" }, tr("全部考场", "All rooms")));
  const conf = h("input", { id: "f-conf", type: "number", min: "0", max: "1", step: "0.05", value: filters.min_confidence, placeholder: "0–1" });
  const only = h("input", { id: "f-only", type: "checkbox", checked: filters.only_flagged });
  const form = h(
    "form",
    { class: "filters", "aria-label": tr("筛选", "Filters") },
    h("label", { for: "f-kind" }, tr("违纪类型", "Kind")),
    kindSel,
    h("label", { for: "f-room" }, tr("考场", "Room")),
    roomSel,
    h("label", { for: "f-conf" }, tr("最低置信度", "Min. confidence")),
    conf,
    h("label", { class: "check" }, only, tr("只看有疑似违纪的", "Only flagged")),
  );
  form.addEventListener("change", () => {
    filters.kind = kindSel.value;
    filters.room = roomSel.value;
    filters.min_confidence = conf.value;
    filters.only_flagged = only.checked;
    load();
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  root.append(h("p", {}, h("a", { href: "#exams" }, "← ", tr("考试列表", "Exams"))), title, form, summary, body);

  async function load() {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v && k !== "exam") q.set(k, v === true ? "true" : v);
    const res = await api.get(`/api/v1/review/exams/${encodeURIComponent(examId)}/triage?${q}`);
    const candidates = res.candidates;
    if (kinds === null) {
      kinds = [...new Set([...(res.kinds || []), ...(filters.kind ? [filters.kind] : [])])];
      kinds.sort((a, b) => kindLabel(a).localeCompare(kindLabel(b), "zh-CN"));
      kindSel.append(...kinds.map((k) => h("option", { value: k, selected: filters.kind === k }, kindLabel(k))));
    }
    if (rooms === null) {
      rooms = res.rooms || [...new Set(candidates.map((c) => c.room).filter(Boolean))].sort().map((id) => ({ id, name: id }));
      roomSel.append(...rooms.map((r) => h("option", { value: r.id, selected: filters.room === r.id }, r.name && r.name !== r.id ? `${r.name}（${r.id}）` : r.id)));
    }
    const flagged = candidates.filter((c) => c.flags.length).length;
    const absent = candidates.filter((c) => c.absent).length;
    // Still uploading is not missing: those are counted apart until their uploads close.
    const missing = candidates.filter((c) => c.uploads_complete === false && !c.uploads_open).length;
    const uploading = candidates.filter((c) => c.uploads_complete === false && c.uploads_open).length;
    summary.textContent = tr("共 {n} 人：疑似违纪 {f} 人，缺考 {a} 人，上传不完整 {m} 人", "{n} candidates: {f} flagged, {a} absent, {m} with missing uploads", {
      n: candidates.length,
      f: flagged,
      a: absent,
      m: missing,
    }) + (uploading ? tr("，上传中 {u} 人", ", {u} still uploading", { u: uploading }) : "");
    clear(body).append(table(candidates));
  }
  await load();
}

function table(candidates) {
  if (!candidates.length) return h("p", { class: "muted" }, tr("没有符合条件的考生。", "No candidates match."));
  return h(
    "table",
    { class: "table triage", id: "triage" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["#", tr("准考证号", "Ticket"), tr("姓名", "Name"), tr("考场", "Room"), tr("签号", "Lot"), tr("状态", "Stage"), tr("上传", "Uploads"), tr("疑似违纪", "Suspected violations"), tr("分值", "Score"), tr("裁定", "Ruling")].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      candidates.map((c, i) =>
        h(
          "tr",
          { class: [c.absent ? "absent" : "", c.flags.length ? "flagged" : ""].join(" "), "data-attempt": c.attempt_id },
          h("td", {}, String(i + 1)),
          h("td", {}, h("a", { href: `#attempt/${c.attempt_id}`, "aria-label": tr("查看 {name}", "Open {name}", { name: c.name }) }, c.ticket)),
          h("td", {}, c.name),
          h("td", {}, c.room_name || c.room || ""),
          h("td", {}, c.lot == null ? "—" : String(c.lot)),
          h("td", {}, c.absent ? h("span", { class: "tag warn" }, tr("缺考", "Absent")) : stageLabel(c.stage)),
          h("td", {}, uploadsCell(c)),
          h(
            "td",
            { class: "flags" },
            c.flags.map((f) => h("span", { class: "tag bad", title: tr("最高置信度 {c}", "Highest confidence {c}", { c: conf(f.max_confidence) }) }, `${kindLabel(f.kind)} ×${f.count} (${conf(f.max_confidence)})`)),
          ),
          h("td", { class: "num" }, (c.flag_score || 0).toFixed(2)),
          h("td", {}, verdictLabel(c.verdict)),
        ),
      ),
    ),
  );
}

// Uploads only mean something once the candidate entered (recording starts there): before
// that, or when absent, nothing was expected, so neither 完整 nor 缺失.
function uploadsCell(c) {
  if (c.uploads_complete == null) return h("span", { class: "muted", title: tr("未入场，无录像需要上传", "Never entered: nothing to upload") }, c.absent ? "—" : tr("未入场", "Not entered"));
  if (c.uploads_complete) return h("span", { class: "tag ok" }, tr("完整", "Complete"));
  // Still within the upload window: the missing parts may arrive yet (the clients retry).
  if (c.uploads_open) return h("span", { class: "tag", title: tr("上传截止前，缺少的录像仍可能补传", "Uploads still open: missing parts may yet arrive") }, tr("上传中", "Uploading"));
  return h("span", { class: "tag bad" }, tr("缺失", "Missing"));
}

function conf(v) {
  return v == null ? "—" : Number(v).toFixed(2);
}
