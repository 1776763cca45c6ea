// Chinese names of stages, event kinds and phone states, and small formatting helpers.

export const STAGES = {
  not_logged_in: "未登录",
  lot: "待抽签",
  attachments: "阅读附件",
  enter: "待入场",
  waiting: "待考",
  answering: "答题中",
  finished: "已交卷",
  absent: "缺考",
};

export const KINDS = {
  focus_lost: "切出考试页面",
  focus_back: "回到考试页面",
  fullscreen_exit: "退出全屏",
  fullscreen_enter: "进入全屏",
  visibility_hidden: "页面被隐藏",
  visibility_visible: "页面恢复显示",
  screenshot_key: "截屏按键",
  copy_paste: "复制粘贴",
  context_menu: "右键菜单",
  second_screen: "第二显示器",
  track_ended: "采集中断",
  device_change: "设备变化",
  offline: "网络断开",
  online: "网络恢复",
  device_check: "设备检测",
  client_error: "客户端错误",
  help_requested: "点击求助",
  help_message: "求助消息",
  no_face: "未检测到人脸",
  multiple_faces: "多人脸",
  face_mismatch: "人脸不符",
  evidence_gap: "佐证画面中断",
  session_active_elsewhere: "异地登录",
  left_mid_exam: "中途离开",
  login: "登录",
  login_failed: "登录失败",
  lot_drawn: "抽签",
  attachment_read: "已阅附件",
  entered: "进入考试",
  finished: "交卷",
  phone_bound: "手机绑定",
  phone_state: "手机状态",
  warning: "警告",
  proctor_note: "监考员记录",
  login_help_requested: "申请人工审核",
  login_approved_manually: "人工审核通过",
  login_help_rejected: "人工审核驳回",
  camera_covered: "摄像头被遮挡或过暗",
  face_covered: "面部被遮挡（如口罩）",
  candidate_out_of_view: "佐证画面中无考生",
  second_person: "佐证画面出现他人",
  flag_ended: "异常已结束",
  evidence_placement: "确认手机机位",
  answer_end: "该题回答完毕",
  long_silence: "长时间无语音",
  audio_summary: "语音分析",
  data_purged: "数据已按期限清除",
  recording_started: "开始录像",
  recording_finalized: "录像上传完成",
};

// Why a face login was refused (the code in login_failed events).
export const LOGIN_CODES = {
  face_mismatch: "人脸不符",
  no_face: "未检测到人脸",
  multiple_faces: "多人脸",
  face_covered: "面部被遮挡",
  face_cut_off: "面部不完整",
  too_dark: "光线过暗",
  face_not_frontal: "未正对摄像头",
  low_quality: "画面模糊",
  liveness_failed: "活体检测未通过",
  liveness_challenge_invalid: "活体挑战无效",
  liveness_challenge_used: "活体挑战已使用",
  liveness_challenge_expired: "活体挑战已过期",
  session_active_elsewhere: "已在其他设备登录",
};

export const PHONE = {
  not_bound: "未绑定",
  bound: "已绑定",
  sweeping: "环拍中",
  placing: "摆放机位",
  recording: "录制中",
  stopped: "已停止",
  offline: "离线",
};

export const CAMS = { webcam: "摄像头", screen: "屏幕", evidence: "手机" };

export function kindName(kind) {
  return KINDS[kind] || kind;
}

const pad = (n) => String(n).padStart(2, "0");

/** hh:mm:ss in the browser's time zone. */
export function hms(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "12 秒前" / "3 分钟前" from an ISO time and the server's now (ms). */
export function ago(iso, nowMs) {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} 秒前`;
  if (s < 3600) return `${Math.floor(s / 60)} 分钟前`;
  return `${Math.floor(s / 3600)} 小时前`;
}

/** What an event says, in one short line. */
export function describe(ev) {
  const d = ev.data || {};
  if (ev.kind === "help_message") return `${d.from === "staff" ? "工作人员" : "考生"}：${d.text || ""}`;
  if (ev.kind === "warning") return `警告：${d.text || ""}`;
  if (ev.kind === "proctor_note") return `记录（${d.author || ""}）：${d.text || ""}`;
  if (ev.kind === "phone_state") return `手机：${PHONE[d.state] || d.state}`;
  if (ev.kind === "lot_drawn" && d.number) return `抽签：${d.number} 号`;
  if (ev.kind === "login_failed") return `登录失败（${LOGIN_CODES[d.code] || d.code || ""}）`;
  if (ev.kind === "evidence_placement") return d.ok ? "考生确认手机机位" : "考生要求重新摆放手机";
  if (ev.kind === "flag_ended" && d.flag) return `${kindName(d.flag)}：已结束`;
  if (ev.kind.startsWith("login_") && d.reason) return `${kindName(ev.kind)}：${d.reason}`;
  return kindName(ev.kind);
}
