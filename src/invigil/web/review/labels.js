// Names of event kinds, streams and verdicts in both languages (Chinese from the proctor
// console's table so the two pages say the same thing).

import { KINDS } from "../proctor/labels.js";
import { currentLang, tr } from "../shared/i18n.js";

const EXTRA = {
  answer_end: ["回答结束标记", "answer end marker"],
  audio_summary: ["音频分析", "audio analysis"],
  audio_unavailable: ["音频无法分析", "audio not analysable"],
  face_covered: ["面部被遮挡", "face covered"],
  face_cut_off: ["面部不完整", "face cut off"],
  face_not_frontal: ["未正对摄像头", "face not frontal"],
  recording_started: ["开始录制", "recording started"],
  recording_finalized: ["录制完成", "recording finalized"],
  placement: ["手机摆放检查", "phone placement"],
};

export function kindLabel(kind) {
  if (EXTRA[kind]) return currentLang() === "en" ? EXTRA[kind][1] : EXTRA[kind][0];
  if (currentLang() === "en") return kind.replace(/_/g, " ");
  return KINDS[kind] || kind;
}

export function streamLabel(kind) {
  return { webcam: tr("摄像头", "Webcam"), screen: tr("屏幕", "Screen"), evidence: tr("手机佐证", "Evidence phone") }[kind] || kind;
}

export function stageLabel(stage) {
  const zh = { not_logged_in: "未登录", lot: "待抽签", attachments: "阅读附件", enter: "待入场", waiting: "待考", answering: "答题中", finished: "已交卷", absent: "缺考" };
  return currentLang() === "en" ? (stage || "").replace(/_/g, " ") : zh[stage] || stage || "";
}

export function verdictLabel(v) {
  if (!v) return tr("未裁定", "No ruling");
  const what = v.violation ? tr("违纪", "Violation") + (v.rule ? `（${v.rule}）` : "") : tr("不违纪", "Not a violation");
  if (v.violation && v.state === "proposed") return `${what} · ${tr("待复核", "awaiting confirmation")}`;
  return what;
}

const pad = (n) => String(n).padStart(2, "0");

/** hh:mm:ss of a server time in the browser's time zone. */
export function hms(ms) {
  if (ms == null || Number.isNaN(ms)) return "";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** m:ss offset from a start. */
export function offset(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return hh ? `${hh}:${pad(mm)}:${pad(s % 60)}` : `${mm}:${pad(s % 60)}`;
}

export function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms(d.getTime())}`;
}
