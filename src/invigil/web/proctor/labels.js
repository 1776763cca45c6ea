// Names of stages, event kinds and phone states in both languages ([中文, English]), and the
// "12 秒前" helper (times of day are the exam's: examTime in shared/i18n.js, store.js examOffset).

import { tr } from "../shared/i18n.js";

export const STAGES = {
  not_logged_in: ["未登录", "Not logged in"],
  lot: ["待抽签", "Drawing lot"],
  attachments: ["阅读附件", "Reading attachments"],
  enter: ["待入场", "Entry"],
  waiting: ["待考", "Waiting"],
  answering: ["答题中", "Answering"],
  finished: ["已交卷", "Submitted"],
  absent: ["缺考", "Absent"],
};

const KIND_NAMES = {
  focus_lost: ["切出考试页面", "Left the exam page"],
  focus_back: ["回到考试页面", "Back on the exam page"],
  fullscreen_exit: ["退出全屏", "Left full screen"],
  fullscreen_enter: ["进入全屏", "Entered full screen"],
  visibility_hidden: ["页面被隐藏", "Page hidden"],
  visibility_visible: ["页面恢复显示", "Page visible again"],
  screenshot_key: ["截屏按键", "Screenshot key"],
  copy_paste: ["复制粘贴", "Copy/paste"],
  context_menu: ["右键菜单", "Context menu"],
  second_screen: ["第二显示器", "Second screen"],
  track_ended: ["采集中断", "Capture stopped"],
  device_change: ["设备变化", "Device change"],
  offline: ["网络断开", "Offline"],
  online: ["网络恢复", "Back online"],
  device_check: ["设备检测", "Device check"],
  client_error: ["客户端错误", "Client error"],
  help_requested: ["点击求助", "Pressed help"],
  help_message: ["求助消息", "Help message"],
  help_dismissed: ["求助已关闭（未回复）", "Help closed without reply"],
  no_face: ["未检测到人脸", "No face"],
  multiple_faces: ["多人脸", "Several faces"],
  face_mismatch: ["人脸不符", "Face mismatch"],
  evidence_gap: ["佐证画面中断", "Evidence camera gap"],
  session_active_elsewhere: ["异地登录", "Logged in elsewhere"],
  left_mid_exam: ["中途离开", "Left mid-exam"],
  login: ["登录", "Login"],
  login_failed: ["登录失败", "Login failed"],
  face_consent_given: ["同意人脸识别", "Agreed to face recognition"],
  face_consent_refused: ["拒绝人脸识别（改为人工核验）", "Declined face recognition (manual check)"],
  lot_drawn: ["抽签", "Lot drawn"],
  attachment_read: ["已阅附件", "Attachment read"],
  entered: ["进入考试", "Entered"],
  finished: ["交卷", "Submitted"],
  phone_bound: ["手机绑定", "Phone bound"],
  phone_state: ["手机状态", "Phone state"],
  warning: ["警告", "Warning"],
  proctor_note: ["监考员记录", "Proctor note"],
  login_help_requested: ["申请人工审核", "Asked for a manual check"],
  login_approved_manually: ["人工审核通过", "Manual check approved"],
  login_help_rejected: ["人工审核驳回", "Manual check rejected"],
  camera_covered: ["摄像头被遮挡或过暗", "Camera covered or too dark"],
  candidate_out_of_view: ["佐证画面中无考生", "Candidate not in evidence view"],
  second_person: ["佐证画面出现他人", "Another person in evidence view"],
  flag_ended: ["异常已结束", "Anomaly ended"],
  evidence_placement: ["确认手机机位", "Phone placement"],
  answer_end: ["该题回答完毕", "Answer ended"],
  long_silence: ["长时间无语音", "Long silence"],
  voice_assistant: ["语音助手唤醒词", "Voice assistant wake word"],
  audio_summary: ["语音分析", "Audio analysis"],
  data_purged: ["数据已按期限清除", "Data purged on schedule"],
  // 录制, as the reviewer's page says (review/labels.js); describe() names the stream.
  recording_started: ["开始录制", "Recording started"],
  recording_finalized: ["录制完成", "Recording finalized"],
  desk_silent: ["考试电脑失去联系", "Exam computer out of contact"],
  desk_back: ["考试电脑恢复联系", "Exam computer back in contact"],
  recording_closed: ["上传截止，系统保存了已收到的录像", "Uploads closed: the server kept what arrived"],
  // The exam office's arrangements for one candidate (attempts/arrangements.py).
  extra_time: ["延长考试时间", "Extra time"],
  room_moved: ["调换考场", "Moved to another room"],
  late_entry_allowed: ["允许补入场", "Late entry allowed"],
  resit_confirmed: ["安排重考", "Resit arranged"],
  resit_dismissed: ["不安排重考", "No resit"],
};

// The Chinese names alone, as the review page reads them.
export const KINDS = Object.fromEntries(Object.entries(KIND_NAMES).map(([k, [zh]]) => [k, zh]));

// Why a face login was refused (the code in login_failed events).
export const LOGIN_CODES = {
  face_mismatch: ["人脸不符", "Face mismatch"],
  no_face: ["未检测到人脸", "No face"],
  multiple_faces: ["多人脸", "Several faces"],
  face_covered: ["面部被遮挡", "Face covered"],
  face_cut_off: ["面部不完整", "Face cut off"],
  too_dark: ["光线过暗", "Too dark"],
  face_not_frontal: ["未正对摄像头", "Not facing the camera"],
  low_quality: ["画面模糊", "Blurred"],
  liveness_failed: ["活体检测未通过", "Liveness failed"],
  liveness_challenge_invalid: ["活体挑战无效", "Liveness challenge invalid"],
  liveness_challenge_used: ["活体挑战已使用", "Liveness challenge used"],
  liveness_challenge_expired: ["活体挑战已过期", "Liveness challenge expired"],
  session_active_elsewhere: ["已在其他设备登录", "Logged in on another device"],
};

export const PHONE = {
  not_bound: ["未绑定", "Not bound"],
  bound: ["已绑定", "Bound"],
  sweeping: ["环拍中", "Room sweep"],
  placing: ["摆放机位", "Placing"],
  recording: ["录制中", "Recording"],
  stopped: ["已停止", "Stopped"],
  offline: ["离线", "Offline"],
};

export const CAMS = { webcam: ["摄像头", "Webcam"], screen: ["屏幕", "Screen"], evidence: ["手机", "Phone"] };

const pick = (pair, fallback) => (pair ? tr(pair[0], pair[1]) : fallback);

export const kindName = (kind) => pick(KIND_NAMES[kind], kind);
export const stageName = (stage) => pick(STAGES[stage], stage || "—");
export const phoneName = (state) => pick(PHONE[state], "—");
export const camName = (cam) => pick(CAMS[cam], cam);
export const loginCodeName = (code) => pick(LOGIN_CODES[code], code || "");

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
  if (k === "help_dismissed") return tr("求助已由 {by} 关闭（未回复）", "Help closed by {by} without reply", { by: d.by || "" });
  if (k === "warning") return tr("警告：{t}", "Warning: {t}", { t: d.text || "" });
  if (k === "proctor_note") return tr("记录（{a}）：{t}", "Note ({a}): {t}", { a: d.author || "", t: d.text || "" });
  if (k === "phone_state") return tr("手机：{s}", "Phone: {s}", { s: pick(PHONE[d.state], d.state) });
  if (k === "lot_drawn" && d.number) return tr("抽签：{n} 号", "Lot: No. {n}", { n: d.number });
  if (k === "login_failed") return tr("登录失败（{c}）", "Login failed ({c})", { c: loginCodeName(d.code) });
  if (k === "evidence_placement") return d.ok ? tr("考生确认手机机位", "Candidate confirmed the phone placement") : tr("考生要求重新摆放手机", "Candidate asked to re-place the phone");
  // Which stream: a desk records two (摄像头, 屏幕) at once, the phone a third (手机).
  if ((k === "recording_started" || k === "recording_finalized") && d.kind) return tr("{k} {s}", "{k}: {s}", { k: kindName(k), s: camName(d.kind) });
  if (k === "recording_closed" && d.kind) return tr("{s}：{k}", "{s}: {k}", { k: kindName(k), s: camName(d.kind) });
  if (k === "flag_ended" && d.flag) return tr("{f}：已结束", "{f}: ended", { f: kindName(d.flag) });
  if (k.startsWith("login_") && d.reason) return `${kindName(k)}：${d.reason}`;
  return kindName(k);
}
