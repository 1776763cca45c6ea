// Shared by the office's tabs (考场与人员, 考务总览, 个别安排): role names, status names, and
// their stylesheet (loaded once by whichever tab comes first, so index.html stays untouched).

import { tr } from "../shared/i18n.js";

export const ROLES = ["proctor", "tech", "reviewer", "examiner", "admin"];
const ROLE_NAMES = {
  proctor: ["监考员", "Proctor"],
  tech: ["技术服务", "Tech support"],
  reviewer: ["考务工作小组", "Reviewer"],
  examiner: ["考官", "Examiner"],
  admin: ["管理员", "Admin"],
};

export function roleName(role) {
  const n = ROLE_NAMES[role];
  return n ? tr(n[0], n[1]) : role;
}

export const STATUS_NAMES = {
  not_logged_in: ["未登录", "Not logged in"],
  logged_in: ["已登录", "Logged in"],
  phone_bound: ["已绑定手机", "Phone bound"],
  entered: ["已入场", "Entered"],
  answering: ["答题中", "Answering"],
  finished: ["已交卷", "Finished"],
  absent: ["缺考", "Absent"],
};

export function statusName(status) {
  const n = STATUS_NAMES[status];
  return n ? tr(n[0], n[1]) : status;
}

export function officeStyles() {
  if (document.getElementById("office-css")) return;
  const link = document.createElement("link");
  link.id = "office-css";
  link.rel = "stylesheet";
  link.href = new URL("./office.css", import.meta.url).href;
  document.head.append(link);
}

/** Minutes and seconds of an outage, e.g. 2分05秒. */
export function duration(seconds) {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m && !s) return tr("{m}分钟", "{m} min", { m });
  return m ? tr("{m}分{s}秒", "{m} min {s} s", { m, s: String(s).padStart(2, "0") }) : tr("{s}秒", "{s} s", { s });
}
