// 成绩查询: a candidate looks up their own published score with 准考证号 + 姓名.

import { createApi } from "../shared/api.js";
import { $, clear, h } from "../shared/dom.js";
import { currentLang, onLangChange, setLang, tr } from "../shared/i18n.js";

const api = createApi();
const params = new URLSearchParams(location.search);
let examId = params.get("exam") || "";
let last = null; // the last answer, re-rendered on a language switch

function labels() {
  document.title = tr("成绩查询 · invigil", "Score lookup · invigil");
  $("#title").textContent = tr("成绩查询", "Score lookup");
  $("#lang").textContent = currentLang() === "en" ? "中文" : "English";
  $("#ticket-label").textContent = tr("准考证号", "准考证号 Admission ticket");
  $("#name-label").textContent = tr("姓名", "姓名 Name");
  $("#submit").textContent = tr("查询", "查询 Look up");
  $("#exam-field").hidden = !!params.get("exam");
  $("#exam-field label").textContent = tr("考试编号", "Exam ID");
  if (last) show(last);
}

function show(r) {
  last = r;
  const box = clear($("#result"));
  if (r.errorCode) {
    const [text, kind] = errorText(r.errorCode, r.message);
    box.append(h("p", { class: `note ${kind}` }, text));
    return;
  }
  if (r.exam && r.exam.title) $("#exam-name").textContent = r.exam.title;
  const lines = [h("p", {}, `${r.name}（${r.ticket}）`)];
  if (r.absent) lines.push(h("p", { class: "score", id: "score" }, tr("缺考", "Absent")));
  else if (r.score == null) lines.push(h("p", { class: "score", id: "score" }, "—"), h("p", { class: "hint" }, tr("暂无成绩。", "No score.")));
  else lines.push(h("p", { class: "hint" }, tr("成绩", "Score")), h("p", { class: "score", id: "score" }, String(r.score)), h("p", { class: "hint" }, tr("分", "points")));
  if (r.verdict && r.verdict.violation) {
    lines.push(h("p", { class: "note error" }, tr("违纪认定：{r}", "Ruled a violation: {r}", { r: r.verdict.rule || "" })));
  }
  box.append(h("section", { class: "card score-card" }, lines));
}

function errorText(code, message) {
  const messages = {
    incomplete: [tr("请填写准考证号和姓名。", "Please enter your admission ticket number and name."), "warn"],
    not_published: [tr("成绩尚未发布，请留意考试通知。", "Scores are not published yet."), "warn"],
    not_found: [tr("准考证号或姓名不正确，请核对后重新查询。", "No candidate with this ticket number and name."), "error"],
    too_many_requests: [tr("查询过于频繁，请稍后再试。", "Too many lookups; please try again later."), "warn"],
    network: [tr("网络连接失败，请检查网络后重试。", "Network error; please try again."), "error"],
  };
  return messages[code] || [message || code, "error"];
}

$("#lookup").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!params.get("exam")) examId = $("#exam").value.trim();
  const ticket = $("#ticket").value.trim();
  const name = $("#name").value.trim();
  if (!examId || !ticket || !name) {
    show({ errorCode: "incomplete" });
    return;
  }
  $("#submit").disabled = true;
  try {
    show(await api.post("/api/v1/results/lookup", { exam_id: examId, ticket, name }, { token: null }));
  } catch (err) {
    show({ errorCode: err.code, message: err.message });
  } finally {
    $("#submit").disabled = false;
  }
});

$("#lang").addEventListener("click", () => setLang(currentLang() === "en" ? "zh-CN" : "en"));
onLangChange(labels);
document.documentElement.lang = currentLang();
labels();
