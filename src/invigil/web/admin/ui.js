// Widgets the admin tabs share: a progress bar, and an upload that reports its progress (fetch
// cannot tell how much of a request body has been sent; XMLHttpRequest can).

import { h } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";

/** A labelled <progress>; set(done, total) or set(null) for "working, amount unknown". */
export function progressBar(label) {
  const bar = h("progress", { max: 1, "aria-label": label || tr("进度", "Progress") });
  const text = h("span", { class: "progress-text muted" });
  const el = h("div", { class: "progress", role: "status" }, bar, text);
  return {
    el,
    set(done, total) {
      if (done == null || !total) {
        bar.removeAttribute("value");
        text.textContent = "";
        return;
      }
      bar.max = total;
      bar.value = done;
      text.textContent = `${Math.round((100 * done) / total)}%`;
    },
  };
}

/** Send `body` (FormData or Blob) with the session's token; onProgress(sent, total) as it
 * goes. Resolves with the JSON reply; rejects with an Error carrying status, code, body. */
export function uploadWithProgress(session, method, path, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    if (session.token) xhr.setRequestHeader("Authorization", `Bearer ${session.token}`);
    xhr.upload.onprogress = (e) => onProgress && e.lengthComputable && onProgress(e.loaded, e.total);
    xhr.onerror = () => reject(Object.assign(new Error(tr("网络错误，请重试。", "Network error, please retry.")), { status: 0, code: "network" }));
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(data || {});
      const e = (data && data.error) || {};
      if (xhr.status === 401) session.logout();
      reject(Object.assign(new Error(e.message || xhr.statusText), { status: xhr.status, code: e.code || `http_${xhr.status}`, body: e }));
    };
    xhr.send(body);
  });
}

/** Download an authenticated file under its server-given name, reporting progress
 * onProgress(received, total) as the bytes arrive (total 0 when the server gives none). */
export async function downloadWithProgress(session, path, fallbackName, onProgress) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
  if (!res.ok) {
    let message = `HTTP ${res.status}`;
    try {
      message = (await res.json()).error.message || message;
    } catch {
      /* not JSON */
    }
    throw Object.assign(new Error(message), { status: res.status });
  }
  const total = Number(res.headers.get("content-length")) || 0;
  const parts = [];
  let received = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    received += value.length;
    if (onProgress) onProgress(received, total);
  }
  const cd = res.headers.get("content-disposition") || "";
  const m = /filename\*=UTF-8''([^;]+)/i.exec(cd) || /filename="?([^";]+)"?/i.exec(cd);
  const name = m ? decodeURIComponent(m[1]) : fallbackName;
  const url = URL.createObjectURL(new Blob(parts, { type: res.headers.get("content-type") || "application/octet-stream" }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return name;
}
