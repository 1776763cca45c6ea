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

/** hh:mm (or full date when not today) of a server time, in the exam's local time zone. */
export function clockTime(iso, utcOffsetMinutes, withSeconds = false) {
  if (!iso) return "";
  const d = new Date(Date.parse(iso) + (utcOffsetMinutes ?? -new Date().getTimezoneOffset()) * 60000);
  const p = (n) => String(n).padStart(2, "0");
  const t = `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}${withSeconds ? ":" + p(d.getUTCSeconds()) : ""}`;
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${t}`;
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
