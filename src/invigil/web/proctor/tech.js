// Tech support (技术服务): face logins that failed and asked for help, the live capture beside
// the enrolment photo, approve or reject with a reason (both audited on the server).

import { h, clear } from "../shared/dom.js";
import { listZones, tr } from "../shared/i18n.js";
import { setImage } from "./images.js";
import { loginCodeName } from "./labels.js";
import { store } from "./store.js";

let requests = [];

export async function loadRequests() {
  const body = await store.api.get("/api/v1/staff/login-help");
  requests = body.requests || [];
  return requests.length;
}

export function renderTech(root, onChange) {
  if (!requests.length) {
    clear(root).append(h("p", { class: "muted" }, tr("暂无待审核的申请。", "No requests waiting.")));
    return;
  }
  // Requests may come from several exams: each time in its own exam's zone.
  const zones = listZones(requests, (r) => (r.exam || {}).utc_offset_minutes);
  clear(root).append(
    h("p", { class: "zone-note", id: "tech-zone-note" }, zones.note),
    ...requests.map((r) => {
      // A practice exam has no enrolment photo: its reference is the first login's face.
      const photoLabel = r.practice ? tr("参考照片（首次登录）", "Reference (first login)") : tr("报名照片", "Enrolment photo");
      const face = figure(r.face_url, `${r.name} ${tr("现场照片", "live capture")}`, tr("现场照片", "Live capture"), tr("申请未附照片", "No capture sent"));
      const photo = figure(
        r.photo_url,
        `${r.name} ${photoLabel}`,
        photoLabel,
        r.practice
          ? tr("模拟考试没有报名照片；考生尚未成功登录过，还没有参考照片。请视频核对身份。", "A practice exam has no enrolment photo, and this candidate has not logged in yet, so there is no reference. Check identity by video.")
          : tr("没有报名照片，请视频核对身份证。", "No enrolment photo: check the ID card by video."),
      );
      const reasonId = `reason-${r.request_id}`;
      const reason = h("input", { id: reasonId, type: "text", maxlength: 1000, placeholder: tr("例如：已视频核对身份证", "e.g. ID card checked by video") });
      const decide = async (action) => {
        const text = reason.value.trim();
        if (!text) {
          reason.focus();
          reason.setCustomValidity(tr("请填写理由", "Please give a reason"));
          reason.reportValidity();
          return;
        }
        reason.setCustomValidity("");
        try {
          await store.api.post(`/api/v1/staff/login-help/${r.request_id}/${action}`, { reason: text });
          await loadRequests();
        } catch (err) {
          window.alert(tr("操作失败：{m}", "Failed: {m}", { m: err.message }));
        }
        onChange();
      };
      return h(
        "article",
        { class: "card request", "data-request": r.request_id },
        h("h3", null, `${r.name}（${r.ticket}）· ${r.room.name}`),
        h(
          "p",
          { class: "muted" },
          tr("{t} 申请（{ip}）；最近失败：{f}", "Asked at {t} ({ip}); recent failures: {f}", {
            t: zones.time(r, r.created_at),
            ip: r.client_ip || "—",
            f: r.recent_failures.map((f) => loginCodeName(f.code)).join(tr("、", ", ")) || "—",
          }),
        ),
        r.text ? h("p", null, tr("考生说明：{t}", "Candidate says: {t}", { t: r.text })) : null,
        elsewhere(r, (t) => zones.time(r, t)),
        siblings(r),
        h("div", { class: "compare" }, face, photo),
        h("label", { for: reasonId }, tr("理由", "理由 Reason")),
        reason,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "primary", onclick: () => decide("approve") }, tr("通过", "Approve")),
          h("button", { type: "button", class: "danger", onclick: () => decide("reject") }, tr("驳回", "Reject")),
        ),
      );
    }),
  );
}

function figure(url, alt, caption, missing) {
  if (!url) return h("figure", { class: "missing" }, h("p", { class: "muted" }, missing), h("figcaption", null, caption));
  const img = h("img", { alt, class: "empty" });
  setImage(img, url);
  return h("figure", null, img, h("figcaption", null, caption));
}

/** Before approving: the candidate is logged in on another device right now. */
function elsewhere(r, time) {
  const s = r.active_session;
  if (!s) return null;
  const where = [s.ip, s.user_agent && s.user_agent.slice(0, 60)].filter(Boolean).join(" · ");
  return h(
    "div",
    { class: "elsewhere", role: "note" },
    h("strong", null, tr("该考生已在另一台设备上登录", "This candidate is already logged in on another device")),
    h("p", null, tr("最近活动 {t}（{w}）。", "Last seen {t} ({w}).", { t: time(s.last_seen_at), w: where || "—" })),
    h(
      "p",
      null,
      tr(
        "通过后，本申请的设备不会立即登录：原设备仍在使用时登录会被拒绝，并记录一次「异地登录」；原设备关闭考试页面约 {n} 秒后，新设备才能登录并替换它。若原设备就是考生本人在用，无需通过本申请。",
        "Approving does not log this device in at once: while the other device is in use the login is refused and one 'logged in elsewhere' flag is recorded; about {n} s after the other device closes the exam page, this device logs in and replaces it. If the candidate is using the other device, there is no need to approve.",
        { n: s.alive_seconds || 20 },
      ),
    ),
  );
}

/** Several addresses asked for the same candidate: only one of them can be the candidate. */
function siblings(r) {
  if ((r.pending_for_candidate || 0) < 2) return null;
  return h(
    "p",
    { class: "elsewhere" },
    tr(
      "该考生有 {n} 个来自不同网络地址的待审核申请（本申请来自 {ip}）。请核对现场照片，只通过本人的申请；通过后其余申请自动取消。",
      "{n} pending requests for this candidate come from different addresses (this one from {ip}). Compare the captures and approve only the candidate's; the others are then cancelled.",
      { n: r.pending_for_candidate, ip: r.client_ip || "—" },
    ),
  );
}

export function pendingRequests() {
  return requests;
}

export function resetTech() {
  requests = [];
}

export function pendingCount() {
  return requests.length;
}

export function requestIds() {
  return requests.map((r) => r.request_id);
}
