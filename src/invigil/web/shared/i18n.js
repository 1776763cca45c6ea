// Two languages: zh-CN (default) and English. Strings are written in place as tr("中文", "English")
// so each screen reads in Chinese in the source; switching re-renders the current screen.

const KEY = "invigil.lang";
let lang = "zh-CN";
try {
  const saved = localStorage.getItem(KEY);
  if (saved === "en" || saved === "zh-CN") lang = saved;
} catch {
  /* storage blocked: default */
}
const listeners = new Set();

export function currentLang() {
  return lang;
}

export function setLang(value) {
  lang = value === "en" ? "en" : "zh-CN";
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(KEY, lang);
  } catch {
    /* ignore */
  }
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** The text in the current language; {name} placeholders are filled from vars. */
export function tr(zh, en, vars) {
  let s = lang === "en" && en ? en : zh;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

// --- times of day in the exam's time zone ----------------------------------------------------
// Every page shows a time of day as the candidate's desk does: in the exam's own zone (its
// utc_offset_minutes, minutes east of UTC, e.g. 480 for UTC+8, -300 for UTC-5), never the
// browser's, so a proctor on the phone with a candidate and a reviewer reading an appeal see
// the same clock times as the candidate. Without an offset (never on the staff pages) the
// browser's zone stands in, and zoneName names that zone.

const pad2 = (n) => String(n).padStart(2, "0");

function offsetAt(ms, utcOffsetMinutes) {
  return Number.isFinite(utcOffsetMinutes) ? utcOffsetMinutes : -new Date(ms).getTimezoneOffset();
}

/** A server time (ISO string or ms) as a Date whose UTC fields read the exam's wall clock. */
function wallClock(t, utcOffsetMinutes) {
  const ms = typeof t === "number" ? t : t ? Date.parse(t) : NaN;
  if (!Number.isFinite(ms)) return null;
  return new Date(ms + offsetAt(ms, utcOffsetMinutes) * 60000);
}

/** hh:mm:ss (or hh:mm) of a server time (ISO or ms) in the exam's zone; "" without a time. */
export function examTime(t, utcOffsetMinutes, withSeconds = true) {
  const d = wallClock(t, utcOffsetMinutes);
  if (!d) return "";
  return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}${withSeconds ? ":" + pad2(d.getUTCSeconds()) : ""}`;
}

/** yyyy-mm-dd hh:mm:ss (or hh:mm) of a server time in the exam's zone; "—" without a time. */
export function examDateTime(t, utcOffsetMinutes, withSeconds = true) {
  const d = wallClock(t, utcOffsetMinutes);
  if (!d) return "—";
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${examTime(t, utcOffsetMinutes, withSeconds)}`;
}

/** The zone's name: UTC+8, UTC-5, UTC+5:30, UTC+0. */
export function zoneName(utcOffsetMinutes) {
  const m = offsetAt(Date.now(), utcOffsetMinutes);
  const a = Math.abs(m);
  return `UTC${m < 0 ? "-" : "+"}${Math.floor(a / 60)}${a % 60 ? ":" + pad2(a % 60) : ""}`;
}

/** The one offset a list of exams' offsets share, or null when they differ (or none). */
export function sharedOffset(offsets) {
  const set = new Set(offsets.filter((o) => Number.isFinite(o)));
  return set.size === 1 ? [...set][0] : null;
}

/**
 * The page's one line naming the zone its times are in: 时间均为考场时间（UTC+8）. Given the
 * offsets of several exams (a list), the zone they share, or — when they differ — that each
 * time is its own exam's (the list then names the zone beside each time: listZones).
 */
export function zoneNote(offsets) {
  const one = Array.isArray(offsets) ? sharedOffset(offsets) : offsets;
  if (Array.isArray(offsets) && one === null) return tr("时间均为各考试的考场时间", "Times in each exam's own zone");
  return tr("时间均为考场时间（{z}）", "Times in the exam's zone ({z})", { z: zoneName(one) });
}

/**
 * For a list of several exams' items (exams, requests …): the zone note, and formatters that
 * name each time's zone beside it when the exams' zones differ. offsetOf reads an item's offset.
 */
export function listZones(items, offsetOf = (item) => item.utc_offset_minutes) {
  const offsets = items.map(offsetOf);
  const mixed = items.length > 0 && sharedOffset(offsets) === null;
  const zoned = (text, item) => (mixed ? `${text} (${zoneName(offsetOf(item))})` : text);
  return {
    note: zoneNote(offsets),
    dateTime: (item, t) => zoned(examDateTime(t, offsetOf(item)), item),
    time: (item, t) => zoned(examTime(t, offsetOf(item)), item),
  };
}

/**
 * A time of the exam's schedule (start, entry, deadline, lot drawing, uploads …) as every desk
 * page writes it, so the same time reads the same on each: yyyy-mm-dd hh:mm, with the seconds
 * only when it is not on a whole minute (an exam set to start a few minutes from now, as the
 * demo does), where hh:mm alone would be up to a minute early beside the countdown.
 */
export function scheduleTime(iso, utcOffsetMinutes) {
  if (!iso) return "";
  const ms = typeof iso === "number" ? iso : Date.parse(iso);
  return examDateTime(iso, utcOffsetMinutes, Number.isFinite(ms) && Math.floor(ms / 1000) % 60 !== 0);
}

/** yyyy-mm-dd hh:mm (or with seconds) of a server time, in the exam's local time zone. */
export function clockTime(iso, utcOffsetMinutes, withSeconds = false) {
  if (!iso) return "";
  return examDateTime(iso, utcOffsetMinutes, withSeconds);
}

/** A countdown like 1:02:03 or 04:05 from milliseconds. */
export function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const p = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${p(m)}:${p(sec)}` : `${p(m)}:${p(sec)}`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
