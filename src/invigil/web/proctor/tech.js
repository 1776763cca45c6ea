// Tech support (技术服务): face logins that failed and asked for help, the live capture beside
// the enrolment photo, approve or reject with a reason (both audited on the server).

import { h, clear } from "../shared/dom.js";
import { setImage } from "./images.js";
import { hms, kindName } from "./labels.js";
import { store } from "./store.js";

let requests = [];

export async function loadRequests() {
  const body = await store.api.get("/api/v1/staff/login-help");
  requests = body.requests || [];
  return requests.length;
}

export function renderTech(root, onChange) {
  if (!requests.length) {
    clear(root).append(h("p", { class: "muted" }, "暂无待审核的申请。"));
    return;
  }
  clear(root).append(
    ...requests.map((r) => {
      const face = h("img", { alt: `${r.name} 现场照片`, class: "empty" });
      const photo = h("img", { alt: `${r.name} 报名照片`, class: "empty" });
      setImage(face, r.face_url);
      setImage(photo, r.photo_url);
      const reasonId = `reason-${r.request_id}`;
      const reason = h("input", { id: reasonId, type: "text", maxlength: 1000, placeholder: "例如：已视频核对身份证" });
      const decide = async (action) => {
        const text = reason.value.trim();
        if (!text) {
          reason.focus();
          reason.setCustomValidity("请填写理由");
          reason.reportValidity();
          return;
        }
        reason.setCustomValidity("");
        try {
          await store.api.post(`/api/v1/staff/login-help/${r.request_id}/${action}`, { reason: text });
          await loadRequests();
        } catch (err) {
          window.alert(`操作失败：${err.message}`);
        }
        onChange();
      };
      return h(
        "article",
        { class: "card request", "data-request": r.request_id },
        h("h3", null, `${r.name}（${r.ticket}）· ${r.room.name}`),
        h("p", { class: "muted" }, `${hms(r.created_at)} 申请；最近失败：${r.recent_failures.map((f) => kindName(f.code)).join("、") || "—"}`),
        r.text ? h("p", null, `考生说明：${r.text}`) : null,
        h(
          "div",
          { class: "compare" },
          h("figure", null, face, h("figcaption", null, "现场照片")),
          h("figure", null, photo, h("figcaption", null, "报名照片")),
        ),
        h("label", { for: reasonId }, "理由"),
        reason,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "primary", onclick: () => decide("approve") }, "通过"),
          h("button", { type: "button", class: "danger", onclick: () => decide("reject") }, "驳回"),
        ),
      );
    }),
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
