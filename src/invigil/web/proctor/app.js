// The proctor console (监考台): staff login, room picker, live grid, alerts, help chat,
// warnings and notes, and face-login approvals for tech support.

import { createApi } from "../shared/api.js";
import { $ } from "../shared/dom.js";
import { currentLang, onLangChange, setLang, tr, zoneNote } from "../shared/i18n.js";
import { renderAlerts, resetAlertNodes, unlockAudio, beep } from "./alerts.js";
import { openDetail, refreshDetail, detailAttempt, closeDetail } from "./detail.js";
import { renderGrid, resetGrid } from "./grid.js";
import { renderHelp, openHelpCount, selectHelp } from "./help.js";
import { renderHelpAlerts, resetHelpAlerts } from "./helpalerts.js";
import { LiveConnection } from "./live.js";
import { loadRequests, renderTech, pendingCount, pendingRequests, requestIds, resetTech } from "./tech.js";
import { store, on, emit, cursor, addEvent, examOffset, isAlert, resetRoom } from "./store.js";

const TOKEN_KEY = "invigil.staff.token";
let live = null;
let tab = "grid";
let techIds = "";

store.api = createApi({
  getToken: () => store.token,
  onUnauthorized: () => logout(),
});

function show(el, yes) {
  el.hidden = !yes;
}

// --- login ---------------------------------------------------------------------------------------

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  unlockAudio();
  $("#login-error").textContent = "";
  try {
    const body = await store.api.post(
      "/api/v1/staff/login",
      { username: $("#username").value.trim(), password: $("#password").value },
      { token: null },
    );
    store.token = body.token;
    sessionStorage.setItem(TOKEN_KEY, body.token);
    $("#password").value = "";
    await start();
  } catch (err) {
    $("#login-error").textContent =
      err.status === 401 ? tr("用户名或密码错误。", "Wrong username or password.") : tr("登录失败：{m}", "Sign-in failed: {m}", { m: err.message });
  }
});

$("#logout").addEventListener("click", async () => {
  // Revoke the token on the server too. A server without the endpoint (404) or out of reach
  // still signs this page out: the token is dropped here either way.
  if (store.token) {
    try {
      await store.api.post("/api/v1/staff/logout", {});
    } catch {
      /* signed out locally all the same */
    }
  }
  logout();
});

function logout() {
  clearTimeout(techTimer);
  resetTech();
  resetHelpAlerts($("#help-alerts"));
  sessionStorage.removeItem(TOKEN_KEY);
  store.token = null;
  if (live) live.close();
  live = null;
  show($("#console-view"), false);
  show($("#room-picker"), false);
  show($("#tabs"), false);
  show($("#logout"), false);
  show($("#conn"), false);
  $("#who").textContent = "";
  show($("#login-view"), true);
}

async function start() {
  store.me = await store.api.get("/api/v1/staff/me");
  const { rooms } = await store.api.get("/api/v1/staff/rooms");
  store.rooms = rooms;
  $("#who").textContent = store.me.username;
  show($("#login-view"), false);
  show($("#console-view"), true);
  show($("#logout"), true);
  show($("#tabs"), true);
  const tech = isTech();
  show($("#tech-tab"), tech);
  const select = $("#room-select");
  select.replaceChildren(...roomOptions(rooms));
  show($("#room-picker"), rooms.length > 0);
  const saved = sessionStorage.getItem("invigil.proctor.room");
  // /proctor/?room=ID (the exam office's overview links here) opens that room.
  const wanted = new URLSearchParams(location.search).get("room");
  const first = rooms.find((r) => r.room_id === wanted) || rooms.find((r) => r.room_id === saved) || rooms[0];
  live = new LiveConnection({ token: store.token, onMessage, onState, cursor });
  if (first) {
    select.value = first.room_id;
    await pickRoom(first.room_id);
  } else {
    $("#room-title").textContent = tr("您没有可监考的考场", "You have no room to watch");
    live.connect();
  }
  if (tech) refreshTech();
}

/** A room's whole name (room, code, exam), as the heading under the bar shows it. */
function roomLabel(r) {
  return `${r.name}（${r.id}）· ${r.exam_title}`;
}

/** The room picker's options: the room alone (第1考场（R01）), under its exam's title (an
 * optgroup), so the closed picker shows the room in full; its title holds the whole name. */
function roomOptions(rooms) {
  const groups = new Map(); // exam_id -> optgroup, in the server's order (newest exam first)
  for (const r of rooms) {
    let group = groups.get(r.exam_id);
    if (!group) {
      group = document.createElement("optgroup");
      group.label = r.exam_title;
      groups.set(r.exam_id, group);
    }
    const o = document.createElement("option");
    o.value = r.room_id;
    o.textContent = `${r.name}（${r.id}）`;
    o.title = roomLabel(r);
    group.append(o);
  }
  return [...groups.values()];
}

function roomTitle() {
  const select = $("#room-select");
  const r = store.rooms.find((x) => x.room_id === select.value);
  select.title = r ? roomLabel(r) : "";
}

$("#room-select").addEventListener("change", (e) => pickRoom(e.target.value));

async function pickRoom(roomId) {
  sessionStorage.setItem("invigil.proctor.room", roomId);
  store.roomId = roomId;
  roomTitle();
  resetRoom();
  zoneLine();
  resetGrid($("#grid"));
  // Which alerts this staff member already acknowledged (they replay but stay closed).
  try {
    const { alerts } = await store.api.get(`/api/v1/staff/alerts?room=${encodeURIComponent(roomId)}&all=true`);
    for (const a of alerts) if (a.acked_at) store.acked.add(`${a.attempt_id}:${a.seq}`);
  } catch {
    /* the alerts still show; acks come back on the next reload */
  }
  live.subscribe([roomId]);
  renderAll();
}

// --- live messages -------------------------------------------------------------------------------

let connState = null;
function onState(state) {
  connState = state;
  const el = $("#conn");
  show(el, true);
  el.className = `conn ${state}`;
  el.textContent =
    {
      online: tr("实时连接", "Live"),
      connecting: tr("连接中…", "Connecting…"),
      offline: tr("已断开，正在重连…", "Disconnected, reconnecting…"),
      unauthorized: tr("登录已失效", "Signed out"),
    }[state] || state;
  if (state === "unauthorized") logout();
}

/** 时间均为考场时间（UTC+8）: the console's times are the watched exam's, as on the desk. */
function zoneLine() {
  const el = $("#zone-note");
  const known = Number.isFinite(examOffset());
  el.textContent = known ? zoneNote(examOffset()) : "";
  show(el, known);
}

function roomSummary() {
  zoneLine();
  const msg = store.status;
  if (!msg) return;
  const n = msg.candidates.length;
  const online = msg.candidates.filter((c) => c.online).length;
  $("#room-summary").textContent = tr("共 {n} 人，在线 {o} 人", "{n} candidates, {o} online", { n, o: online });
}

function onMessage(msg) {
  switch (msg.type) {
    case "room": {
      if (msg.room.room_id !== store.roomId) return;
      store.status = msg;
      store.serverSkewMs = Date.parse(msg.now) - Date.now();
      store.roster = new Map(msg.candidates.map((c) => [c.attempt_id, c]));
      $("#room-title").textContent = `${msg.room.name}（${msg.room.id}）· ${msg.exam.title}`;
      roomSummary();
      emit("status");
      break;
    }
    case "event": {
      if (msg.room_id !== store.roomId) return;
      const ev = msg.event;
      if (!addEvent(msg.attempt_id, ev)) return;
      // Alerts beep when new, and when they were missed while the connection was down.
      if (isAlert(ev) && store.live && !store.acked.has(`${msg.attempt_id}:${ev.seq}`)) beep();
      if (!msg.replay) {
        const techEvent = ev.kind.startsWith("login_help") || ev.kind === "login_approved_manually";
        if (techEvent && isTech()) refreshTech();
        scheduleRender();
      }
      break;
    }
    case "help_elsewhere":
      store.elsewhereHelp = msg.requests || [];
      renderPinned();
      break;
    case "replay_done":
      store.live = true;
      renderAll();
      break;
    case "ack":
      store.acked.add(`${msg.attempt_id}:${msg.seq}`);
      emit("alerts");
      break;
    default:
      break;
  }
}

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    renderAll();
  });
}

// --- rendering -----------------------------------------------------------------------------------

function openAt(aid, seq) {
  openDetail($("#detail"), aid, seq);
}

/** From a pinned help alert: the candidate's chat with the 回复 field ready. */
function openChat(aid) {
  closeDetail();
  selectHelp(aid);
  showTab("help");
  $("#reply-text")?.focus();
}

/** From a pinned help alert of another room: that room, then the candidate's chat (its events
 * replay on the switch, so the conversation is there when the chat opens). */
async function goToHelp(roomId, aid) {
  $("#room-select").value = roomId;
  await pickRoom(roomId);
  openChat(aid);
}

/** From a pinned face-login alert: the request's card on the tech tab. */
function openTech(requestId) {
  closeDetail();
  showTab("tech");
  const card = document.querySelector(`.request[data-request="${CSS.escape(requestId)}"]`);
  if (card) {
    card.scrollIntoView({ block: "center" });
    card.querySelector("input")?.focus();
  }
}

function renderPinned() {
  renderHelpAlerts($("#help-alerts"), {
    requests: isTech() ? pendingRequests() : [],
    elsewhere: store.elsewhereHelp.filter((r) => r.room_id !== store.roomId),
    onOpenChat: openChat,
    onOpenTech: openTech,
    onGoTo: goToHelp,
  });
}

function renderAlertPanel() {
  renderAlerts({
    list: $("#alerts"),
    ackedList: $("#acked-alerts"),
    count: $("#alert-count"),
    filterSelect: $("#alert-filter"),
    onOpen: openAt,
  });
}

function renderAll() {
  if (!store.token) return;
  renderAlertPanel();
  renderGrid($("#grid"), (aid) => openAt(aid, null));
  const helpN = openHelpCount();
  $("#help-count").textContent = String(helpN);
  show($("#help-count"), helpN > 0);
  if (tab === "help") renderHelp($("#help-queue"), $("#help-chat"));
  if (detailAttempt()) refreshDetail();
  renderPinned();
}

on("status", () => {
  renderGrid($("#grid"), (aid) => openAt(aid, null));
  if (detailAttempt()) refreshDetail();
});
on("alerts", () => {
  renderAlertPanel();
  renderGrid($("#grid"), (aid) => openAt(aid, null));
});
$("#alert-filter").addEventListener("change", renderAlertPanel);

function showTab(name) {
  tab = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of ["grid", "help", "tech"]) show($(`#tab-${t}`), t === name);
  if (name === "help") renderHelp($("#help-queue"), $("#help-chat"));
  if (name === "tech") renderTech($("#tech-list"), () => refreshTech(true));
}

for (const btn of document.querySelectorAll("#tabs button")) {
  btn.addEventListener("click", () => {
    showTab(btn.dataset.tab);
    if (tab === "tech") refreshTech(true);
  });
}

// Only tech support (and admins) decide face logins: nobody else asks for the list.
function isTech() {
  return !!store.me && store.me.roles.some((r) => r === "tech" || r === "admin");
}

let techTimer = null;
async function refreshTech(force = false) {
  clearTimeout(techTimer);
  if (!store.token || !isTech()) return;
  try {
    await loadRequests();
  } catch {
    /* keep what is shown */
  }
  const n = pendingCount();
  $("#tech-count").textContent = String(n);
  show($("#tech-count"), n > 0);
  const ids = requestIds().join(",");
  if (force || ids !== techIds || tab !== "tech") {
    techIds = ids;
    renderTech($("#tech-list"), () => refreshTech(true));
  }
  renderPinned();
  techTimer = setTimeout(() => refreshTech(), 5000);
}

setInterval(() => {
  // "x 秒前" labels age even when nothing arrives.
  if (store.status) renderGrid($("#grid"), (aid) => openAt(aid, null));
}, 5000);

// --- language ------------------------------------------------------------------------------------

/** The page's fixed texts: each element with data-en keeps its Chinese in data-zh. */
function applyStaticText() {
  const en = currentLang() === "en";
  document.documentElement.lang = currentLang();
  document.title = en ? "Proctor console · invigil" : "监考台 · invigil";
  for (const el of document.querySelectorAll("[data-en]")) {
    if (el.dataset.zh === undefined) el.dataset.zh = el.textContent;
    el.textContent = en ? el.dataset.en : el.dataset.zh;
  }
  for (const el of document.querySelectorAll("[data-en-aria-label]")) {
    if (el.dataset.zhAriaLabel === undefined) el.dataset.zhAriaLabel = el.getAttribute("aria-label");
    el.setAttribute("aria-label", en ? el.dataset.enAriaLabel : el.dataset.zhAriaLabel);
  }
  $("#lang").textContent = en ? "中文" : "English";
  $("#lang").setAttribute("aria-label", en ? "切换到中文" : "Switch to English");
}

$("#lang").addEventListener("click", () => setLang(currentLang() === "en" ? "zh-CN" : "en"));
onLangChange(() => {
  applyStaticText();
  if (!store.token) return;
  // Everything built from data is built again in the new language.
  closeDetail();
  resetGrid($("#grid"));
  resetAlertNodes();
  resetHelpAlerts($("#help-alerts"));
  $("#help-chat").replaceChildren();
  if (connState) onState(connState);
  roomSummary();
  renderAll();
  if (isTech()) renderTech($("#tech-list"), () => refreshTech(true));
});
applyStaticText();

// --- boot ----------------------------------------------------------------------------------------

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  store.token = saved;
  start().catch(() => logout());
}
