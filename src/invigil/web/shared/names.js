// What the staff pages call things, [中文, English]: the three streams, the analyses, a
// candidate's stages, the evidence phone's states, why a face login was refused, and every event
// kind; and the order an attempt's log is read in. One table that the proctor console, the review
// page and the exam office all import: with a copy per page the same thing had two names (语音分析
// here, 音频分析 there; 手机 and 手机佐证).

import { tr } from "./i18n.js";

// The evidence phone is 手机佐证 wherever staff meet it, its picture, its recording and its state:
// the candidate's pages call the device 手机佐证摄像头.
export const STREAMS = {
  webcam: ["摄像头", "Webcam"],
  screen: ["屏幕", "Screen"],
  evidence: ["手机佐证", "Evidence phone"],
};

// The server's analysis of a recording's audio, and the two ways it finds where an answer ends.
export const ANALYSES = {
  audio: ["音频分析", "Audio analysis"],
  keyword: ["关键词「该题回答完毕」", "Keyword"],
  pause: ["语音停顿推断", "Pause in speech"],
};

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

export const PHONE_STATES = {
  not_bound: ["未绑定", "Not bound"],
  bound: ["已绑定", "Bound"],
  sweeping: ["环拍中", "Room sweep"],
  placing: ["摆放机位", "Placing"],
  recording: ["录制中", "Recording"],
  stopped: ["已停止", "Stopped"],
  offline: ["离线", "Offline"],
};

// Why a face login was refused (the code in login_failed events, and the login quality gate's).
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

// Short names, nine characters at most: the review page's 系统日志 keeps each on one line in a
// column that wide (what else there is to say goes in the line's details: describe, summary).
export const EVENT_KINDS = {
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
  help_dismissed: ["忽略求助", "Help dismissed"], // the console's 忽略 button
  no_face: LOGIN_CODES.no_face,
  multiple_faces: LOGIN_CODES.multiple_faces,
  face_mismatch: LOGIN_CODES.face_mismatch,
  face_covered: LOGIN_CODES.face_covered,
  face_cut_off: LOGIN_CODES.face_cut_off,
  face_not_frontal: LOGIN_CODES.face_not_frontal,
  evidence_gap: ["佐证画面中断", "Evidence camera gap"],
  session_active_elsewhere: ["异地登录", "Logged in elsewhere"],
  left_mid_exam: ["中途离开", "Left mid-exam"],
  login: ["登录", "Login"],
  login_failed: ["登录失败", "Login failed"],
  face_consent_given: ["同意人脸识别", "Agreed to face recognition"],
  face_consent_refused: ["拒绝人脸识别", "Declined face recognition"],
  lot_drawn: ["抽签", "Lot drawn"],
  attachment_read: ["已阅附件", "Attachment read"],
  entered: ["进入考试", "Entered"],
  questions_delivered: ["试题已送达", "Questions delivered"],
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
  // The marker the audio analysis finds where the candidate said 「该题回答完毕」.
  answer_end: ["回答结束标记", "Answer end marker"],
  long_silence: ["长时间无语音", "Long silence"],
  voice_assistant: ["语音助手唤醒词", "Voice assistant wake word"],
  audio_summary: ANALYSES.audio,
  audio_unavailable: ["音频无法分析", "Audio not analysable"],
  data_purged: ["数据已按期限清除", "Data purged on schedule"],
  // Which stream is said beside them (describe on the console, the review page's summary).
  recording_started: ["开始录制", "Recording started"],
  recording_finalized: ["录制完成", "Recording finalized"],
  recording_closed: ["录像上传截止", "Uploads closed"],
  desk_silent: ["考试电脑失去联系", "Exam computer out of contact"],
  desk_back: ["考试电脑恢复联系", "Exam computer back in contact"],
  // The exam office's arrangements for one candidate (attempts/arrangements.py).
  extra_time: ["延长考试时间", "Extra time"],
  room_moved: ["调换考场", "Moved to another room"],
  late_entry_allowed: ["允许补入场", "Late entry allowed"],
  resit_confirmed: ["安排重考", "Resit arranged"],
  resit_dismissed: ["不安排重考", "No resit"],
};

/** What a table calls key, in the page's language; fallback when the table does not know it. */
export function nameIn(table, key, fallback = key) {
  // Own keys only: a data value such as "constructor" is not a name.
  const pair = key != null && Object.hasOwn(table, key) ? table[key] : null;
  return pair ? tr(pair[0], pair[1]) : fallback;
}

// The log is stored in sequence (the hash chain's order), but a report the client sent late is
// dated back and analysis appends its findings with the time they happened: people read it in
// time order.
export function byTime(events) {
  return [...(events || [])].sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.seq - b.seq);
}
