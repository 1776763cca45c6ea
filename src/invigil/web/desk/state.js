// Shared state of the desk client: what this computer keeps per exam (localStorage), the
// page's state, the API client and event queue, and the small DOM helpers every stage uses.
// A leaf module: the stages import it, it imports none of them (the view registry VIEWS
// lives here so a stage can register itself while the modules load).

import { ServerClock, createApi } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { EventQueue } from "../shared/eventqueue.js";
import { clockTime, scheduleTime, tr } from "../shared/i18n.js";

export const params = new URLSearchParams(location.search);
export const examId = params.get("exam") || "";
export const STORE_KEY = `invigil.desk.${examId}`;
export const HEARTBEAT_MS = 5000;
export const SNAPSHOT_MS = 5000;

// --- persisted per exam on this computer (survives reloads and crashes) -----------------------

export function loadStore() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
  } catch {
    return {};
  }
}
export const store = loadStore();
export function save() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(store));
  } catch {
    /* storage blocked: works for this page only */
  }
}

// --- app state ---------------------------------------------------------------------------------

export const S = {
  view: null,
  viewArg: null,
  state: null, // GET /candidate/state
  token: store.token || null,
  clock: new ServerClock(),
  cam: null, // camera + microphone MediaStream
  screen: null, // whole-screen MediaStream
  recorders: { webcam: null, screen: null },
  engine: null,
  signals: null,
  meter: null,
  questions: null,
  questionsError: null,
  finishing: false,
  loginFailures: 0,
  loginMessage: null,
  report: {}, // device check results, sent as a device_check event after login
  uploads: null, // GET /candidate/uploads
  help: { open: false, messages: [], error: null, sendError: null, unread: 0, draft: "" },
  problems: [],
  tick: null,
  timers: [],
  screenLost: false,
};

export const api = createApi({
  getToken: () => S.token,
  onUnauthorized: (err) => hooks.sessionLost(err),
});
export const events = new EventQueue({ api, storageKey: `invigil.events.${examId}` });

window.__invigil = {
  S,
  store,
  api,
  events,
  chunkLog: () => (S.engine ? S.engine.chunkLog() : []),
  uploads: () => (S.engine ? S.engine.summary() : []),
  eventsSent: () => events.sent,
};

// --- small helpers -------------------------------------------------------------------------------

export const main = $("#main");
export const L = (zh, en, vars) => tr(zh, en, vars);
export const tz = () => (S.state && S.state.exam ? S.state.exam.utc_offset_minutes : undefined);
// The two ways a desk page writes a time of day, so a time reads the same wherever it appears:
// `at` for the exam's schedule (start, entry, deadline …; see scheduleTime), `atSecond` for
// when something happened (a help message, the phone's picture), always to the second.
export const at = (iso) => scheduleTime(iso, tz());
export const atSecond = (iso) => clockTime(iso, tz(), true);
export const serverNow = () => S.clock.now();
export const until = (iso) => Date.parse(iso) - serverNow();

/** The desk reaches the server: the browser is online and the upload engine has not lost it. */
export function isOnline() {
  return navigator.onLine && (!S.engine || S.engine.online);
}

export function emit(kind, data = {}) {
  events.push(kind, data);
}

export function button(label, onclick, opts = {}) {
  return h("button", { type: "button", class: opts.class || "", onclick, disabled: opts.disabled, "aria-label": opts.aria, id: opts.id }, label);
}

export function note(kind, ...text) {
  return h("p", { class: `note ${kind}`, role: kind === "error" ? "alert" : undefined }, ...text);
}

export function video(stream, opts = {}) {
  const v = h("video", { autoplay: true, muted: true, playsinline: true, class: opts.class || "" });
  v.muted = true;
  if (stream) v.srcObject = stream;
  return v;
}

export function card(title, ...body) {
  return h("section", { class: "card" }, h("h1", null, title), ...body);
}

export function later(fn, ms) {
  const t = setTimeout(fn, ms);
  S.timers.push(t);
  return t;
}


export function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

// Each stage module adds its view: VIEWS.name = (arg) => element.
export const VIEWS = {};

// Late-bound calls into modules that import this one (set by session.js).
export const hooks = { sessionLost: () => {} };
