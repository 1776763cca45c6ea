// The console's state: the room's candidates (from the server's room status), every event
// received per attempt (replayed or live), the acknowledged alerts, and change listeners.

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
