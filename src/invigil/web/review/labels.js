// The review page's words: event data as 「键：值」 in either language, verdicts, durations, the
// access log. Event kinds, streams, stages and analyses are the staff pages' shared names
// (shared/names.js), so the reviewer reads what the proctor console said.

import { currentLang, examDateTime, formatBytes, tr } from "../shared/i18n.js";
import { ANALYSES, EVENT_KINDS, LOGIN_CODES, PHONE_STATES, STAGES, STREAMS, nameIn } from "../shared/names.js";

const spaced = (code) => (currentLang() === "en" ? String(code || "").replace(/_/g, " ") : code || "");

export function kindLabel(kind) {
  return nameIn(EVENT_KINDS, kind, spaced(kind));
}

export function streamLabel(kind) {
  return nameIn(STREAMS, kind);
}

export function stageLabel(stage) {
  return nameIn(STAGES, stage, spaced(stage));
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

/** A length of time in words: 「45 秒」, 「1 分 05 秒」, 「1 小时 02 分 05 秒」. */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (hh) return tr("{h} 小时 {m} 分 {s} 秒", "{h} h {m} min {s} s", { h: hh, m: pad(mm), s: pad(ss) });
  if (mm) return tr("{m} 分 {s} 秒", "{m} min {s} s", { m: mm, s: pad(ss) });
  return tr("{s} 秒", "{s} s", { s: ss });
}

// Codes that events carry in their data, so a zh-CN page never shows a raw code.
const CODES = {
  candidate: ["考生主动交卷", "by the candidate"],
  deadline: ["考试时间到", "time is up"],
  ...ANALYSES,
  staff: ["考务人员", "staff"],
  ...STREAMS,
  manual: ["人工", "manual"],
  auto: ["自动", "automatic"],
  frame_count: ["画面帧数不足", "too few frames"],
  other_person: ["非本人", "another person"],
  turn_not_seen: ["未完成转头动作", "head turn not seen"],
  photo_pose: ["登录照片未正对摄像头", "login photo not frontal"],
  online: ["在线", "online"],
  proposed: ["待复核", "awaiting confirmation"],
  confirmed: ["已确认", "confirmed"],
  dismissed: ["不予安排", "dismissed"],
  scores: ["成绩", "scores"],
  absences: ["缺考", "absences"],
  uploads: ["上传完整性", "uploads"],
  rulings: ["违纪认定", "rulings"],
  csv: ["CSV", "CSV"],
  xlsx: ["XLSX", "XLSX"],
  // the liveness challenge's head turns
  left: ["向左转头", "turn left"],
  right: ["向右转头", "turn right"],
  // the evidence phone: its states and why its recording had a gap
  ...PHONE_STATES,
  hidden: ["手机页面被切走", "page hidden"],
  reload: ["手机页面重新加载", "page reloaded"],
  // the desk's copy/paste and screenshot keys
  copy: ["复制", "copy"],
  cut: ["剪切", "cut"],
  paste: ["粘贴", "paste"],
  keyup: ["松开按键", "key released"],
  keydown: ["按下按键", "key pressed"],
  // why the browser fell short in the device check
  not_chrome: ["不是 Chrome 浏览器", "not Chrome"],
  old_chrome: ["Chrome 版本过旧", "Chrome too old"],
  insecure: ["页面地址不安全（非 https）", "insecure page"],
  camera_api: ["不支持摄像头", "no camera support"],
  screen_api: ["不支持屏幕共享", "no screen sharing"],
  recorder: ["不支持录制", "no recorder"],
  storage: ["不支持本地存储", "no local storage"],
  crypto: ["不支持加密校验", "no crypto"],
  // audio analysis that could not run
  unreadable: ["录像文件无法读取", "unreadable"],
  no_audio_track: ["录像中没有音频", "no audio track"],
  no_audio_decoded: ["音频无法解码", "audio not decodable"],
  // uploads the server refused for good, and files purged after the retention period
  store_failed: ["本地保存失败", "could not store locally"],
  hash_mismatch: ["校验值不符", "checksum mismatch"],
  chunk_conflict: ["分段冲突", "chunk conflict"],
  empty_chunk: ["空分段", "empty chunk"],
  too_large: ["文件过大", "too large"],
  not_entered: ["尚未进入考试", "not entered"],
  retention: ["保存期满", "retention period over"],
  long_outage: ["长时间中断", "a long outage"],
  short_outages: ["多次短时中断", "several short outages"],
  chunk_lost: ["分段丢失", "chunk lost"],
};

// Codes whose meaning depends on the key they are under (「来自：考生」, but 交卷 「原因：考生主动交卷」).
const CODES_UNDER = {
  from: { candidate: ["考生", "candidate"], staff: ["工作人员", "staff"] },
  by: { candidate: ["考生本人抽签", "the candidate"], auto: ["系统自动分配", "assigned automatically"], move: ["调换考场后重新抽签", "drawn again after a move"] },
  via: { qr: ["扫描二维码", "QR code"], code: ["输入绑定码", "binding code"] },
  track: { video: ["视频", "video"], audio: ["音频", "audio"] },
  where: {
    window: ["页面脚本", "page script"],
    promise: ["页面脚本（异步）", "page script (async)"],
    upload: ["录像上传", "upload"],
    recorder_webcam: ["摄像头录制", "webcam recorder"],
    recorder_screen: ["屏幕录制", "screen recorder"],
  },
  target: { input: ["输入框", "input"], textarea: ["文本框", "text area"], body: ["页面", "page"] },
  "network.kind": { upload: ["上传测速", "upload test"], latency: ["仅测往返延迟", "round trip only"], offline: ["无法连接服务器", "offline"] },
  view: {
    device: ["设备检测", "device check"],
    login: ["人脸登录", "face login"],
    lot: ["抽签", "lot drawing"],
    attachments: ["阅读附件", "attachments"],
    binding: ["佐证绑定", "evidence binding"],
    enter: ["进入考试", "entering"],
    share: ["共享屏幕", "screen sharing"],
    confirm: ["设备确认", "device confirmation"],
    waiting: ["待考", "waiting"],
    answering: ["答题", "answering"],
    uploads: ["交卷上传", "uploads"],
    offline: ["网络断开", "offline"],
  },
  sources: { desk: ["考试电脑", "exam computer"] },
  // the desk refused a screen share that was not the whole screen (desk/media.js)
  screen_share: { refused: ["未共享整个屏幕，不予使用", "refused: not the whole screen"] },
  display_surface: {
    monitor: ["整个屏幕", "whole screen"],
    window: ["单个窗口", "a window"],
    browser: ["浏览器标签页", "a browser tab"],
    unknown: ["未知", "unknown"],
  },
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
  before_start: ["开考前放弃", "gave up before the start"],
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
  // what the desk's event queue adds to an event sent late (shared/eventqueue.js)
  delayed_s: ["上报延迟（秒）", "reported late by (s)"],
  queued_offline: ["断网时记录", "queued while offline"],
  // the server's time of a late report, which is itself dated back (attempts/events.py)
  received_at: ["送达服务器时间", "reached the server"],
  label: ["设备", "device"],
  confirm_reason: ["复核意见", "confirmation"],
  // who logged in from where (face consent, login, phone binding, login help)
  notice_version: ["告知书版本", "notice version"],
  retention_days: ["人脸数据保存期限（天）", "retention (days)"],
  client: ["客户端", "client"],
  ip: ["网络地址", "IP address"],
  client_ip: ["网络地址", "IP address"],
  user_agent: ["浏览器标识", "user agent"],
  enrolled_now: ["本次录入参考人脸", "reference face enrolled now"],
  liveness: ["活体检测", "liveness"],
  steps: ["转头动作", "head turns"],
  best: ["各动作最佳角度", "best angles"],
  distances: ["人脸距离", "face distances"],
  missing_faces: ["未检出人脸的帧数", "frames without a face"],
  not_seen: ["未完成的动作", "turns not seen"],
  manual: ["人工审核", "manual check"],
  approved_by: ["审核人", "approved by"],
  has_face: ["附现场照片", "live photo attached"],
  failures: ["此前失败次数", "failures before"],
  face_consent_refused: ["拒绝人脸识别", "declined face recognition"],
  cancelled: ["同时关闭的申请", "requests closed with it"],
  faces: ["人脸数", "faces"],
  // lot, attachments, the phone
  number: ["签号", "lot number"],
  room_size: ["考场人数", "room size"],
  attachment_id: ["附件编号", "attachment"],
  title: ["标题", "title"],
  via: ["绑定方式", "bound via"],
  replaced_phone: ["替换了原手机", "replaced a phone"],
  ok: ["机位合适", "placement OK"],
  placement: ["手机摆放检查", "phone placement"],
  snapshot_at: ["截图时间", "snapshot time"],
  // recordings
  chunks: ["分段数", "chunks"],
  bytes: ["大小", "size"],
  received: ["收到分段数", "chunks received"],
  joined: ["可回放分段数", "chunks joined"],
  left_out: ["未并入回放的分段", "chunks left out"],
  // analysis: flags with the frames and thresholds behind them
  stream: ["画面", "stream"],
  since: ["开始时间", "since"],
  at: ["时间", "at"],
  rejected_score: ["排除得分", "rejected score"],
  brightness: ["亮度", "brightness"],
  contrast: ["对比度", "contrast"],
  flag: ["异常类型", "flag"],
  started_seq: ["开始事件序号", "started at event"],
  of_last: ["最近帧数", "of the last"],
  at_least: ["至少帧数", "at least"],
  at_once: ["单帧即判阈值", "single-frame threshold"],
  embed_every: ["比对间隔（帧）", "compare every (frames)"],
  pause_seconds: ["停顿时长（秒）", "pause (s)"],
  kws_threshold: ["关键词检测阈值", "keyword threshold"],
  kws_score: ["关键词加权", "keyword score"],
  word: ["唤醒词", "wake word"],
  score: ["得分", "score"],
  // audio analysis
  duration_s: ["时长（秒）", "duration (s)"],
  speech_s: ["说话时长（秒）", "speech (s)"],
  silence_s: ["静音时长（秒）", "silence (s)"],
  questions: ["各题", "per question"],
  from_s: ["开始（秒）", "from (s)"],
  to_s: ["结束（秒）", "to (s)"],
  ended_by: ["结束方式", "ended by"],
  decode_error: ["解码错误", "decoding error"],
  wake_words: ["唤醒词次数", "wake words"],
  kws_error: ["关键词识别错误", "keyword spotting error"],
  detail: ["详情", "detail"],
  // the exam computer in and out of contact, and the desk's own signals
  last_seen_at: ["最后联系时间", "last heard from"],
  duration_ms: ["持续时间", "duration"],
  started_at: ["开始时间", "started at"],
  key: ["按键", "key"],
  type: ["动作", "type"],
  action: ["操作", "action"],
  target: ["位置", "target"],
  cameras: ["摄像头数", "cameras"],
  microphones: ["麦克风数", "microphones"],
  extended: ["连接了多个显示器", "several monitors"],
  at_start: ["开始时已连接", "at start"],
  track: ["媒体", "track"],
  where: ["出错位置", "where"],
  message: ["错误信息", "message"],
  error: ["错误", "error"],
  recordingId: ["录像编号", "recording"],
  missing: ["缺少的分段", "missing chunks"],
  view: ["所在页面", "view"],
  // the device check's report
  browser: ["浏览器", "browser"],
  name: ["名称", "name"],
  version: ["版本", "version"],
  problems: ["问题", "problems"],
  browser_ok: ["浏览器可用", "browser usable"],
  camera: ["摄像头", "camera"],
  virtual: ["虚拟摄像头", "virtual camera"],
  width: ["宽度", "width"],
  height: ["高度", "height"],
  frameRate: ["帧率", "frame rate"],
  microphone: ["麦克风", "microphone"],
  virtual_cameras: ["虚拟摄像头", "virtual cameras"],
  battery: ["电池", "battery"],
  level: ["电量", "level"],
  charging: ["正在充电", "charging"],
  network: ["网络", "network"],
  kbps: ["上传速度（千比特/秒）", "upload (kbps)"],
  ms: ["往返延迟（毫秒）", "round trip (ms)"],
  test_recording: ["测试录制", "test recording"],
  screen_share: ["屏幕共享", "screen share"],
  display_surface: ["所选共享内容", "shared surface"],
  // the exam office's arrangements
  minutes: ["分钟数", "minutes"],
  previous_minutes: ["原延长分钟数", "previous minutes"],
  deadline: ["截止时间", "deadline"],
  until: ["截止时间", "until"],
  to: ["新考场", "to room"],
  lot_from: ["原签号", "previous lot"],
  lot_to: ["新签号", "new lot"],
  outages: ["中断记录", "outages"],
  start: ["开始", "start"],
  end: ["结束", "end"],
  sources: ["来源", "sources"],
  note: ["备注", "note"],
  seq: ["事件序号", "event"],
  // what a purge removed
  files: ["文件数", "files"],
  originals: ["原始录像", "original recordings"],
  media: ["回放录像", "playback recordings"],
  snapshots: ["截图", "snapshots"],
  login_captures: ["登录抓拍", "login captures"],
  photos: ["报名照片", "enrolment photos"],
  unreferenced: ["无记录的文件", "unreferenced files"],
  face_embeddings: ["人脸特征", "face features"],
};

// Keys whose meaning depends on where they stand: an event kind's, or a parent key's.
const KEYS_UNDER = {
  "room_moved.from": ["原考场", "from room"],
  "frames[]": ["判定依据的画面", "frames"], // a flag's supporting frames, not a count
  "frames.scores": ["检测得分", "detection scores"],
  "frames.distance": ["与报名照片的距离", "distance"],
  "login_failed.distance": ["与报名照片的距离", "distance"],
  "login.distance": ["与报名照片的距离", "distance"],
  "second_screen.extended": ["扩展显示器", "extended display"],
  "outages.seconds": ["时长（秒）", "seconds"],
  "lot_drawn.by": ["抽签方式", "drawn by"],
  "data_purged.what": ["已清除", "purged"],
  "what.chunks": ["录像分段", "recording chunks"],
  "client_error.seq": ["分段序号", "chunk no."], // an upload's refused chunk, not an event
};

const pick = (pair) => (currentLang() === "en" ? pair[1] : pair[0]);

export function codeLabel(value) {
  const pair = CODES[value];
  return pair ? pick(pair) : String(value);
}

function keyLabel(key, value, where) {
  const pair =
    (Array.isArray(value) && value.some((x) => x && typeof x === "object") && KEYS_UNDER[`${key}[]`]) ||
    (where.parent && KEYS_UNDER[`${where.parent}.${key}`]) ||
    (where.kind && KEYS_UNDER[`${where.kind}.${key}`]) ||
    KEYS[key];
  if (pair) return pick(pair);
  return currentLang() === "en" ? key.replace(/_/g, " ") : kindLabel(key);
}

// A time in the data (client_at …): shown like every other time, in the exam's zone.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

function valueText(key, v, tz, where) {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v === "boolean") return v ? tr("是", "yes") : tr("否", "no");
  if (typeof v === "number") {
    if (key === "duration_ms") return duration(v);
    if (key === "bytes") return formatBytes(v);
    if (key === "level" && where.parent === "battery") return `${Math.round(v * 100)}%`;
    return key === "distance" || key === "confidence" ? v.toFixed(2) : String(v);
  }
  if (Array.isArray(v) && !v.length) return tr("无", "none");
  // A list of pairs ([偏转, 俯仰] per head turn) in brackets, so its numbers do not run together.
  if (Array.isArray(v)) return v.map((x) => (Array.isArray(x) ? `（${valueText(key, x, tz, where)}）` : valueText(key, x, tz, where))).join("、");
  if (typeof v === "object") return `（${describeData(v, tz, { kind: where.kind, parent: key })}）`;
  if (key === "kind" || key === "event_kind" || key === "flag") {
    const under = CODES_UNDER[`${where.parent}.${key}`];
    if (under && under[v]) return pick(under[v]);
    return CODES[v] ? codeLabel(v) : kindLabel(v);
  }
  if (ISO_TIME.test(v)) return examDateTime(v, tz);
  const under = CODES_UNDER[`${where.parent}.${key}`] || CODES_UNDER[key];
  if (under && under[v]) return pick(under[v]);
  // A refused login's code, or a liveness failure's reason (no_face …): the login page's words.
  if ((key === "code" || key === "reason") && !CODES[v] && LOGIN_CODES[v]) return pick(LOGIN_CODES[v]);
  // The gaps an outage merged: 考试电脑, or the phone's own reason (phone:hidden).
  if (key === "sources" && v.startsWith("phone:")) return `${streamLabel("evidence")}（${codeLabel(v.slice(6))}）`;
  return codeLabel(v);
}

/** One value of an event's data in words, as the system log shows it under that key. */
export function dataValue(key, value, tz, where = {}) {
  return valueText(key, value, tz, where);
}

/**
 * An event's or audit entry's data as 「键：值」 pairs in the page's language, never JSON; times
 * in it in the exam's zone (tz: its utc_offset_minutes). A nested object reads in brackets
 * （键：值；…）; where.kind (the event's kind) and where.parent pick a key's sense where it
 * differs (room_moved's 「原考场」, a flag's frames).
 */
export function describeData(data, tz, where = {}) {
  if (!data || typeof data !== "object") return data == null ? "" : String(data);
  return Object.entries(data)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${keyLabel(k, v, where)}：${valueText(k, v, tz, where)}`)
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
