// 评审与评分: staff sign-in, then by role — reviewers (考务工作小组) and admins: exams →
// triage → one candidate's review; examiners (考官): blind scoring by lot number.
// Views are chosen by the URL hash so reload and back keep the place.

import { $, clear, h } from "../shared/dom.js";
import { currentLang, listZones, onLangChange, setLang, tr } from "../shared/i18n.js";
import { createStaffSession, routeBox } from "../shared/staffauth.js";
import { renderCandidate } from "./candidate.js";
import { renderScoringExams, renderSheet, renderSheets } from "./scoring.js";
import { renderTriage } from "./triage.js";

const view = $("#view");
let cleanup = null;

const session = createStaffSession({ onLogout: () => route() });

function isReviewer() {
  return session.hasRole("reviewer", "admin");
}
function isExaminer() {
  return session.hasRole("examiner");
}

function chrome() {
  document.title = tr("评审与评分 · invigil", "Review and scoring · invigil");
  $("#app-title").textContent = tr("评审与评分", "Review and scoring");
  $("#lang").textContent = currentLang() === "en" ? "中文" : "English";
  $("#lang").setAttribute("aria-label", currentLang() === "en" ? "切换到中文" : "Switch to English");
  $("#logout").textContent = tr("退出", "Sign out");
  const signedIn = !!session.me;
  $("#logout").hidden = !signedIn;
  $("#who").textContent = signedIn ? session.me.username : "";
  const nav = $("#nav");
  nav.hidden = !signedIn;
  clear(nav);
  if (!signedIn) return;
  const here = location.hash || "";
  if (isReviewer()) {
    nav.append(h("a", { href: "#exams", class: here.startsWith("#scoring") || here.startsWith("#sheet") ? "" : "active" }, tr("评审", "Review")));
  }
  if (isExaminer()) {
    nav.append(h("a", { href: "#scoring", class: here.startsWith("#scoring") || here.startsWith("#sheet") ? "active" : "" }, tr("评分", "Scoring")));
  }
  if (session.hasRole("admin")) nav.append(h("a", { href: "/admin/" }, tr("考试管理", "Administration")));
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const root = await routeBox(session, view, chrome, route);
  if (!root) return;
  const [name, arg] = (location.hash.slice(1) || "").split("/");
  const ctx = { session, api: session.api, go: (hash) => (location.hash = hash) };
  let done = null;
  try {
    if (name === "triage" && arg && isReviewer()) done = await renderTriage(root, ctx, arg);
    else if (name === "attempt" && arg && isReviewer()) done = await renderCandidate(root, ctx, arg);
    else if (name === "scoring" && arg && isExaminer()) done = await renderSheets(root, ctx, arg);
    else if (name === "sheet" && arg && isExaminer()) done = await renderSheet(root, ctx, arg);
    else if (name === "scoring" && isExaminer()) done = await renderScoringExams(root, ctx);
    else if (isReviewer()) await renderExams(root, ctx);
    else if (isExaminer()) done = await renderScoringExams(root, ctx);
    else root.append(h("p", { class: "note error" }, tr("您的账号没有评审或评分权限。", "Your account may not review or score.")));
  } catch (err) {
    if (err.status === 401) return;
    clear(root).append(h("p", { class: "note error", role: "alert" }, tr("加载失败：{m}", "Could not load: {m}", { m: err.message })));
  }
  if (typeof done !== "function") return;
  if (root.isConnected) cleanup = done;
  else done();
}

async function renderExams(root, { api }) {
  const { exams } = await api.get("/api/v1/review/exams");
  const zones = listZones(exams);
  root.append(
    h("h2", {}, tr("考试", "Exams")),
    exams.length ? h("p", { class: "zone-note", id: "zone-note" }, zones.note) : null,
    exams.length
      ? h(
          "table",
          { class: "table" },
          h("thead", {}, h("tr", {}, h("th", {}, tr("考试", "Exam")), h("th", {}, tr("开考时间", "Starts")), h("th", {}, tr("截止时间", "Deadline")), h("th", {}, tr("成绩", "Scores")))),
          h(
            "tbody",
            {},
            exams.map((e) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `#triage/${e.id}` }, e.title)),
                h("td", {}, zones.dateTime(e, e.starts_at)),
                h("td", {}, zones.dateTime(e, e.deadline)),
                h("td", {}, e.published ? tr("已发布", "Published") : tr("未发布", "Not published")),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, tr("暂无考试。", "No exams.")),
  );
}

$("#logout").addEventListener("click", async () => {
  await session.signOut();
  location.hash = "";
});
$("#lang").addEventListener("click", () => setLang(currentLang() === "en" ? "zh-CN" : "en"));
onLangChange(() => route());
window.addEventListener("hashchange", () => route());
document.documentElement.lang = currentLang();
route();
