// The console's state: the room's candidates (from the server's room status), every event
// received per attempt (replayed or live), the acknowledged alerts, and change listeners.

import { examTime } from "../shared/i18n.js";

export const store = {
  api: null,
  token: null,
  me: null,
  rooms: [],
  roomId: null,
  status: null, // last {"type": "room"} message
  roster: new Map(), // attempt_id -> candidate row of the status
  events: new Map(), // attempt_id -> [event...] sorted by seq
  acked: new Set(), // "attempt:seq"
  elsewhereHelp: [], // unanswered help requests in this staff member's other rooms (server's list)
  live: false, // replay finished: new alerts beep
  serverSkewMs: 0,
};

const listeners = new Map();

export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(fn);
}

export function emit(name, detail) {
  for (const fn of listeners.get(name) || []) fn(detail);
}

/** The watched room's exam's offset (minutes east of UTC): the console's times are in its zone. */
export function examOffset() {
  const fromStatus = store.status && store.status.exam ? store.status.exam.utc_offset_minutes : undefined;
  if (Number.isFinite(fromStatus)) return fromStatus;
  const room = store.rooms.find((r) => r.room_id === store.roomId);
  return room ? room.utc_offset_minutes : undefined;
}

/** hh:mm:ss of a server time in the watched room's exam's zone (as the candidate's desk shows it). */
export function clock(iso) {
  return examTime(iso, examOffset());
}

export function serverNow() {
  return Date.now() + store.serverSkewMs;
}

export function cursor() {
  const out = {};
  for (const [aid, evs] of store.events) if (evs.length) out[aid] = evs[evs.length - 1].seq;
  return out;
}

/** Add an event; false when it was already known. */
export function addEvent(attemptId, ev) {
  let list = store.events.get(attemptId);
  if (!list) store.events.set(attemptId, (list = []));
  if (list.length && list[list.length - 1].seq < ev.seq) {
    list.push(ev);
    return true;
  }
  if (list.some((e) => e.seq === ev.seq)) return false;
  list.push(ev);
  list.sort((a, b) => a.seq - b.seq);
  return true;
}

export function candidate(attemptId) {
  return store.roster.get(attemptId) || { name: "?", ticket: "?", attempt_id: attemptId };
}

// The server decides the severity (per exam: a flag set to "warning" raises no alert).
export function isAlert(ev) {
  return ev.severity === "violation";
}

export function resetRoom() {
  store.status = null;
  store.roster = new Map();
  store.events = new Map();
  store.acked = new Set();
  store.live = false;
}
