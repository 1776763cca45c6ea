// The console's words for events, stages, streams and phone states (the tables themselves are the
// staff pages' shared ones, shared/names.js), what an event says in one line, and the "12 秒前"
// helper (times of day are the exam's: examTime in shared/i18n.js, store.js examOffset).

import { tr } from "../shared/i18n.js";
import { EVENT_KINDS, LOGIN_CODES, PHONE_STATES, STAGES, STREAMS, nameIn } from "../shared/names.js";

export const kindName = (kind) => nameIn(EVENT_KINDS, kind);
export const stageName = (stage) => nameIn(STAGES, stage, stage || "—");
export const phoneName = (state) => nameIn(PHONE_STATES, state, "—");
export const camName = (cam) => nameIn(STREAMS, cam);
export const loginCodeName = (code) => nameIn(LOGIN_CODES, code, code || "");

/** "12 秒前" / "3 分钟前" from an ISO time and the server's now (ms). */
export function ago(iso, nowMs) {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (s < 60) return tr("{n} 秒前", "{n} s ago", { n: s });
  if (s < 3600) return tr("{n} 分钟前", "{n} min ago", { n: Math.floor(s / 60) });
  return tr("{n} 小时前", "{n} h ago", { n: Math.floor(s / 3600) });
}

/** What an event says, in one short line. */
export function describe(ev) {
  const d = ev.data || {};
  const k = ev.kind;
  if (k === "help_message") return `${d.from === "staff" ? tr("工作人员", "Staff") : tr("考生", "Candidate")}：${d.text || ""}`;
  if (k === "help_dismissed") return tr("{by} 忽略了求助（未回复）", "{by} dismissed the help request without reply", { by: d.by || "" });
  if (k === "face_consent_refused") return tr("拒绝人脸识别，改为人工核验", "Declined face recognition: a manual check instead");
  if (k === "warning") return tr("警告：{t}", "Warning: {t}", { t: d.text || "" });
  if (k === "proctor_note") return tr("记录（{a}）：{t}", "Note ({a}): {t}", { a: d.author || "", t: d.text || "" });
  if (k === "phone_state") return tr("{p}：{s}", "{p}: {s}", { p: camName("evidence"), s: nameIn(PHONE_STATES, d.state) });
  if (k === "lot_drawn" && d.number) return tr("抽签：{n} 号", "Lot: No. {n}", { n: d.number });
  if (k === "login_failed") return tr("登录失败（{c}）", "Login failed ({c})", { c: loginCodeName(d.code) });
  if (k === "evidence_placement") return d.ok ? tr("考生确认手机机位", "Candidate confirmed the phone placement") : tr("考生要求重新摆放手机", "Candidate asked to re-place the phone");
  // Which stream: a desk records two (摄像头, 屏幕) at once, the phone a third (手机佐证).
  if ((k === "recording_started" || k === "recording_finalized") && d.kind) return tr("{k} {s}", "{k}: {s}", { k: kindName(k), s: camName(d.kind) });
  if (k === "recording_closed" && d.kind) return tr("{s}：{k}，系统保存了已收到的部分", "{s}: {k}, the server kept what arrived", { k: kindName(k), s: camName(d.kind) });
  if (k === "flag_ended" && d.flag) return tr("{f}：已结束", "{f}: ended", { f: kindName(d.flag) });
  if (k.startsWith("login_") && d.reason) return `${kindName(k)}：${d.reason}`;
  return kindName(k);
}
