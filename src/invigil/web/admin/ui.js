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
