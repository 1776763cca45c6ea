// 5 阅读考试附件: each file in the page, 【已阅】 per file.

import { $, clear, h } from "../shared/dom.js";
import { refreshState, route } from "./session.js";
import { stepTitle } from "./shell.js";
import { L, S, VIEWS, api, button, card, note } from "./state.js";

// 5 阅读考试附件 -----------------------------------------------------------------------------------

export const blobUrls = new Map();

export async function attachmentView(a) {
  const box = h("div", { class: "viewer" }, L("正在打开…", "Opening…"));
  try {
    const res = await api.request("GET", a.url, { raw: true });
    const type = (a.content_type || res.headers.get("content-type") || "").toLowerCase();
    if (type.startsWith("text/")) {
      const text = await res.text();
      clear(box).append(h("pre", { class: "text-file" }, text));
    } else {
      const blob = await res.blob();
      const url = blobUrls.get(a.id) || URL.createObjectURL(new Blob([blob], { type: type || blob.type }));
      blobUrls.set(a.id, url);
      if (type.startsWith("image/")) clear(box).append(h("img", { src: url, alt: a.title }));
      else if (type.includes("pdf")) clear(box).append(h("iframe", { src: url, title: a.title, class: "pdf" }));
      else clear(box).append(h("embed", { src: url, type, title: a.title }), h("p", null, h("a", { href: url, download: a.title }, L("无法在页面中显示，点此下载查看", "Cannot be shown here: download it"))));
    }
  } catch (err) {
    clear(box).append(note("error", L("附件打开失败：{m}。请点击【刷新附件】重试。", "Could not open: {m}.", { m: err.message })));
  }
  return box;
}

VIEWS.attachments = () => {
  const st = S.state;
  const list = h("div", { class: "attachments" });
  for (const a of st.attachments) {
    const viewerSlot = h("div");
    attachmentView(a).then((el) => viewerSlot.append(el));
    const ack = button(a.read ? L("已确认", "Confirmed") : L("已阅", "Read"), async () => {
      ack.disabled = true;
      try {
        await api.post(`/api/v1/candidate/attachments/${a.id}/read`);
        a.read = true;
        ack.textContent = L("已确认", "Confirmed");
        ack.removeAttribute("aria-label");
        item.classList.add("read");
        updateNext();
      } catch (err) {
        ack.disabled = false;
        item.append(note("error", err.offline ? L("网络不通，请稍后再点【已阅】。", "No network: retry.") : err.message));
      }
    }, { class: a.read ? "secondary" : "primary", aria: a.read ? undefined : "已阅", disabled: a.read });
    const item = h("article", { class: `attachment ${a.read ? "read" : ""}`, "data-attachment": a.id },
      h("h2", null, a.title), viewerSlot, h("div", { class: "actions" }, ack));
    list.append(item);
  }
  const next = button(L("下一步", "Next"), async () => {
    await refreshState();
    route();
  }, { class: "primary", aria: "下一步" });
  const remain = h("p", { class: "hint" });
  function updateNext() {
    const left = st.attachments.filter((a) => !a.read).length;
    next.disabled = left > 0;
    remain.textContent = left ? L("还有 {n} 个附件未确认。", "{n} attachment(s) left.", { n: left }) : L("全部附件已确认，请点击【下一步】。", "All confirmed: click Next.");
  }
  updateNext();
  return card(
    stepTitle("attachments", "阅读考试附件", "read the attachments"),
    note("info", L("请逐一阅读下列文件，读完一个点击它下方的【已阅】。全部确认后才能进入考试。", "Read each file and click Read under it. All must be confirmed before entering.")),
    list,
    h("div", { class: "actions" }, remain, next),
  );
};
