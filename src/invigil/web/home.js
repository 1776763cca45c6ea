// The landing page: links to each role's page, the desk reached by its exam ID, and a
// language switch. Texts are in the markup (zh-CN) with their English in data-en.
import { currentLang, setLang } from "./shared/i18n.js";

const texts = [...document.querySelectorAll("[data-en]")].map((el) => ({ el, zh: el.textContent }));

function render() {
  const en = currentLang() === "en";
  for (const { el, zh } of texts) el.textContent = en ? el.dataset.en : zh;
  document.getElementById("lang").textContent = en ? "中文" : "English";
  document.title = en ? "invigil · remote structured interviews" : "invigil 远程结构化面试";
  document.documentElement.lang = en ? "en" : "zh-CN";
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(currentLang() === "en" ? "zh-CN" : "en");
  render();
});

document.getElementById("desk-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const exam = document.getElementById("exam-id").value.trim();
  if (exam) location.href = `desk/?exam=${encodeURIComponent(exam)}`;
});

render();
