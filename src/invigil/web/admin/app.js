// The exam office's console (/admin/): a shell with tabs. Each tab is an ES module loaded on
// demand; the shell owns sign-in, the language switch, the tab bar and the routing.
//
// Interface for tab modules (admin helpers build on it; keep it stable):
//   export async function render(root, ctx)   // draw into `root` (a fresh, empty <div>)
//   ctx = {
//     api,        // JSON client (shared/api.js): api.get(path), api.post(path, json),
//                 //   api.request(method, path, {json, form, body}); errors are ApiError
//                 //   {status, code, message, body} with the server's Chinese message
//     session,    // shared/staffauth.js session: me, hasRole(), blobUrl(path), download(path)
//     tr,         // tr("中文", "English", vars): every visible string goes through it
//     examId,     // the exam the hash names (or the last one chosen), or null
//     parts,      // the rest of the hash after the tab and exam: "#exam/ID/edit" -> ["edit"]
//     go(hash),   // navigate, e.g. ctx.go(`#roster/${id}`) (re-renders)
//     refresh(),  // re-render the current route (after a change)
//     exams(),    // Promise of [{id, title, starts_at, utc_offset_minutes, ...}] (GET /api/v1/admin/exams)
//   }
// Times of day are shown in the exam's zone (utc_offset_minutes), as on the candidate's desk:
// examDateTime / examTime and zoneNote in shared/i18n.js (listZones for several exams).
// Routes are location.hash = "#<tab>[/<examId>[/<more>...]]"; "#exam/<id>" is one exam's page
// (考试管理 tab). A tab with `perExam` and no exam in the hash gets the last exam chosen, or
// an exam picker drawn by the shell.
// ui.js beside this file has the shared widgets: a progress bar and an upload with progress
// (every long step shows one).
// A render whose route changed meanwhile writes into a detached box: harmless.

import { $, clear, h } from "../shared/dom.js";
import { currentLang, listZones, onLangChange, setLang, tr } from "../shared/i18n.js";
import { createStaffSession, routeBox } from "../shared/staffauth.js";

export const TABS = [
  { id: "exams", zh: "考试管理", en: "Exams", load: () => import("./exams.js"), aliases: ["exam"] },
  { id: "roster", zh: "考生导入", en: "Roster import", load: () => import("./roster.js"), perExam: true },
  { id: "people", zh: "考场与人员", en: "Rooms & staff", load: () => import("./people.js"), perExam: true },
  { id: "overview", zh: "考务总览", en: "Overview", load: () => import("./overview.js"), perExam: true },
  { id: "arrangements", zh: "个别安排", en: "Arrangements", load: () => import("./arrangements.js"), perExam: true },
  { id: "results", zh: "成绩发布", en: "Results", load: () => import("./results.js"), perExam: true },
];

const LAST_EXAM = "invigil.admin.exam";
const view = $("#view");
const session = createStaffSession({ onLogout: () => route() });
const api = session.api;

function parseHash() {
  const parts = (location.hash.slice(1) || "").split("/").filter(Boolean).map(decodeURIComponent);
  const name = parts.shift() || "exams";
  const tab = TABS.find((t) => t.id === name || (t.aliases || []).includes(name)) || TABS[0];
  const examId = parts.length ? parts.shift() : null;
  return { name, tab, examId, parts };
}

function lastExam() {
  return sessionStorage.getItem(LAST_EXAM);
}

function chrome(current) {
  document.title = tr("考务管理 · invigil", "Exam office · invigil");
  $("#app-title").textContent = tr("考务管理", "Exam office");
  $("#lang").textContent = currentLang() === "en" ? "中文" : "English";
  $("#logout").textContent = tr("退出", "Sign out");
  $("#logout").hidden = !session.me;
  $("#who").textContent = session.me ? session.me.username : "";
  const nav = $("#nav");
  nav.hidden = !session.me;
  clear(nav);
  if (!session.me) return;
  const named = current && current.examId && (current.tab.perExam || current.name === "exam");
  const exam = named ? current.examId : lastExam();
  for (const t of TABS) {
    const href = t.perExam && exam ? `#${t.id}/${encodeURIComponent(exam)}` : `#${t.id}`;
    const active = current && current.tab === t;
    nav.append(h("a", { href, class: active ? "active" : "", "aria-current": active ? "page" : null, "data-tab": t.id }, tr(t.zh, t.en)));
  }
  nav.append(h("a", { href: "/review/" }, tr("评审", "Review")));
}

let examsCache = null;
function exams() {
  if (!examsCache) {
    examsCache = api.get("/api/v1/admin/exams").then((r) => r.exams);
    examsCache.catch(() => (examsCache = null));
  }
  return examsCache;
}

async function picker(root, tab) {
  const list = await exams();
  const zones = listZones(list);
  root.append(
    h("h2", {}, tr(tab.zh, tab.en)),
    h("p", { class: "muted" }, tr("请选择考试：", "Choose an exam:")),
    list.length ? h("p", { class: "zone-note", id: "zone-note" }, zones.note) : null,
    list.length
      ? h("ul", { class: "exam-picker" }, list.map((e) => h("li", {}, h("a", { href: `#${tab.id}/${encodeURIComponent(e.id)}` }, e.title), " ", h("span", { class: "muted" }, zones.dateTime(e, e.starts_at)))))
      : h("p", { class: "muted" }, tr("暂无考试。", "No exams.")),
  );
}

async function route() {
  const current = parseHash();
  examsCache = null; // counts change; each route reads them afresh
  const root = await routeBox(session, view, () => chrome(current), route);
  if (!root) return;
  if (!session.hasRole("admin")) {
    root.append(h("p", { class: "note error" }, tr("只有管理员可以使用本页面。", "Only administrators may use this page.")));
    return;
  }
  let { tab, examId } = current;
  if (examId && (tab.perExam || current.name === "exam")) sessionStorage.setItem(LAST_EXAM, examId);
  try {
    if (tab.perExam && !examId) {
      examId = lastExam();
      const known = examId && (await exams()).some((e) => e.id === examId);
      if (!known) return void (await picker(root, tab));
    }
    const mod = await tab.load();
    await mod.render(root, {
      api,
      session,
      tr,
      examId,
      parts: current.parts,
      route: current.name,
      go: (hash) => {
        if (location.hash === hash) route();
        else location.hash = hash;
      },
      refresh: () => route(),
      exams,
    });
  } catch (err) {
    if (err.status === 401) return;
    clear(root).append(h("p", { class: "note error", role: "alert" }, tr("加载失败：{m}", "Could not load: {m}", { m: err.message })));
  }
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
