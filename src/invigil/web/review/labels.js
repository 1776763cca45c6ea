// Names of event kinds, streams and verdicts in both languages (Chinese from the proctor
// console's table so the two pages say the same thing).

import { KINDS } from "../proctor/labels.js";
import { currentLang, examDateTime, tr } from "../shared/i18n.js";

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

/** m:ss offset from a start (a duration, not a time of day: times of day are the exam's, from
 * examTime / examDateTime in shared/i18n.js). */
export function offset(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return hh ? `${hh}:${pad(mm)}:${pad(s % 60)}` : `${mm}:${pad(s % 60)}`;
}

// Codes that events carry in their data, so a zh-CN page never shows a raw code.
const CODES = {
  candidate: ["考生主动交卷", "by the candidate"],
  deadline: ["考试时间到", "time is up"],
  keyword: ["关键词「该题回答完毕」", "keyword"],
  pause: ["语音停顿推断", "pause in speech"],
  audio: ["音频分析", "audio analysis"],
  staff: ["考务人员", "staff"],
  webcam: ["摄像头", "webcam"],
  screen: ["屏幕", "screen"],
  evidence: ["手机佐证", "evidence phone"],
  manual: ["人工", "manual"],
  auto: ["自动", "automatic"],
  frame_count: ["画面帧数不足", "too few frames"],
  other_person: ["非本人", "another person"],
  turn_not_seen: ["未完成转头动作", "head turn not seen"],
  recording: ["录制中", "recording"],
  online: ["在线", "online"],
  offline: ["离线", "offline"],
  proposed: ["待复核", "awaiting confirmation"],
  confirmed: ["已确认", "confirmed"],
  scores: ["成绩", "scores"],
  absences: ["缺考", "absences"],
  uploads: ["上传完整性", "uploads"],
  rulings: ["违纪认定", "rulings"],
  csv: ["CSV", "CSV"],
  xlsx: ["XLSX", "XLSX"],
};

const KEYS = {
  reason: ["原因", "reason"],
  text: ["内容", "text"],
  from: ["来自", "from"],
  author: ["记录人", "author"],
  by: ["操作人", "by"],
  distance: ["距离", "distance"],
  confidence: ["置信度", "confidence"],
  question: ["题号", "question"],
  method: ["方式", "method"],
  source: ["来源", "source"],
  offset_s: ["录像内时间（秒）", "offset (s)"],
  seconds: ["时长（秒）", "seconds"],
  kind: ["类型", "kind"],
  mime: ["格式", "format"],
  recording_id: ["录像编号", "recording"],
  snapshot_id: ["截图编号", "snapshot"],
  request_id: ["申请编号", "request"],
  early: ["提前交卷", "early"],
  extra: ["多余标记", "extra marker"],
  code: ["代码", "code"],
  status: ["状态", "status"],
  frames: ["帧数", "frames"],
  range: ["字节范围", "byte range"],
  sheet_id: ["评分表", "score sheet"],
  index: ["录像序号", "recording no."],
  scores: ["各题分数", "scores"],
  total: ["合计", "total"],
  what: ["内容", "what"],
  format: ["格式", "format"],
  forced: ["强制", "forced"],
  event_seq: ["事件序号", "event"],
  event_kind: ["事件类型", "event kind"],
  violation: ["违纪", "violation"],
  rule: ["规则", "rule"],
  state: ["状态", "state"],
  client_at: ["客户端时间", "client time"],
  label: ["设备", "device"],
};

export function codeLabel(value) {
  const pair = CODES[value];
  return pair ? (currentLang() === "en" ? pair[1] : pair[0]) : String(value);
}

function keyLabel(key) {
  const pair = KEYS[key];
  if (pair) return currentLang() === "en" ? pair[1] : pair[0];
  return currentLang() === "en" ? key.replace(/_/g, " ") : kindLabel(key);
}

// A time in the data (client_at …): shown like every other time, in the exam's zone.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

function valueText(key, v, tz) {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v === "boolean") return v ? tr("是", "yes") : tr("否", "no");
  if (typeof v === "number") return key === "distance" || key === "confidence" ? v.toFixed(2) : String(v);
  if (Array.isArray(v)) return v.map((x) => valueText(key, x, tz)).join("、");
  if (typeof v === "object") return describeData(v, tz);
  if (key === "kind" || key === "event_kind") return CODES[v] ? codeLabel(v) : kindLabel(v);
  if (ISO_TIME.test(v)) return examDateTime(v, tz);
  return codeLabel(v);
}

/**
 * An event's or audit entry's data as 「键：值」 pairs in the page's language, never JSON; times
 * in it in the exam's zone (tz: its utc_offset_minutes).
 */
export function describeData(data, tz) {
  if (!data || typeof data !== "object") return data == null ? "" : String(data);
  return Object.entries(data)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${keyLabel(k)}：${valueText(k, v, tz)}`)
    .join("；");
}

const SEVERITIES = { info: ["信息", "info"], warning: ["提示", "warning"], violation: ["疑似违纪", "suspected violation"] };

export function severityLabel(s) {
  const pair = SEVERITIES[s];
  return pair ? (currentLang() === "en" ? pair[1] : pair[0]) : s || "";
}

const ACTIONS = {
  view: ["查看考生材料", "viewed the file"],
  view_photo: ["查看报名照片", "viewed the photo"],
  ruling: ["事件裁定", "ruled on a flag"],
  verdict: ["提出最终裁定", "proposed a verdict"],
  confirm: ["复核确认", "confirmed a verdict"],
  scoring_view: ["考官打开评分表", "examiner opened the sheet"],
  scoring_media: ["考官观看录像", "examiner watched the recording"],
  score_submit: ["提交评分", "submitted scores"],
  publish: ["发布成绩", "published scores"],
  reopen: ["重新开放审核", "re-opened the review"],
  export: ["导出", "exported"],
  recording_media: ["观看录像", "watched a recording"],
  recording_original: ["下载原始录像", "downloaded an original recording"],
  recording_status: ["查看录像状态", "checked a recording"],
  evidence_export: ["导出证据包", "exported the evidence package"],
};

export function actionLabel(action) {
  const pair = ACTIONS[action];
  if (pair) return currentLang() === "en" ? pair[1] : pair[0];
  return currentLang() === "en" ? action.replace(/_/g, " ") : tr("其他操作", "other");
}

// Per action, the details worth reading (ids, hashes and timestamps stay in the data).
const DETAIL_KEYS = {
  ruling: ["event_seq", "event_kind", "violation", "rule", "reason"],
  verdict: ["violation", "rule", "reason", "state"],
  confirm: ["violation", "rule", "confirm_reason"],
  reopen: ["reason"],
  publish: ["forced"],
  export: ["what", "format"],
  score_submit: ["scores", "total"],
};
KEYS.confirm_reason = ["复核意见", "confirmation"];

/** An audit entry's detail as readable text, never JSON. */
export function auditDetail(entry, tz) {
  const d = entry.detail;
  if (!d || typeof d !== "object") return d == null ? "" : String(d);
  const keys = DETAIL_KEYS[entry.action];
  const picked = {};
  for (const [k, v] of Object.entries(d)) {
    if (keys ? keys.includes(k) : !/(^id$|_id$|_at$|hash)/.test(k) || k === "recording_id") picked[k] = v;
  }
  return describeData(picked, tz);
}
