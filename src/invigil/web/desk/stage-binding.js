// 3 佐证绑定: the QR code and binding code for the evidence phone, its live status.

import { clear, h } from "../shared/dom.js";
import { placementPanel } from "./placement.js";
import { refreshState, route } from "./session.js";
import { stepTitle } from "./shell.js";
import { L, S, VIEWS, api, at, atSecond, button, card, later, note, save, store } from "./state.js";

export function evidenceStatusText(ev) {
  const status = ev ? ev.status : "not_bound";
  return {
    not_bound: L("手机尚未绑定", "Phone not bound"),
    bound: L("手机已绑定，请在手机上开始环拍", "Phone bound: start the room sweep on the phone"),
    sweeping: L("手机正在环拍房间", "Phone is sweeping the room"),
    placing: L("手机已完成环拍，正在摆放机位：请确认手机拍到的画面", "Phone swept the room and is being placed: check its picture"),
    recording: L("手机正在录制", "Phone is recording"),
    offline: L("手机已离线，请检查手机网络", "Phone offline: check its network"),
    stopped: L("手机已结束录制", "Phone stopped recording"),
  }[status] || status;
}

// Once the phone records, the QR code has done its work: a confirmation takes its place (the QR
// was the biggest thing on the page and invited a second scan). 重新显示二维码 brings a fresh one
// back for a phone that replaces this one (the shown code was used up by the binding); the
// 显示手机绑定二维码 link of the entry step opens the page with it shown ({qr: true}).
VIEWS.binding = (arg) => {
  const qr = h("div", { class: "qr", id: "qr" }, L("正在生成二维码…", "Making the QR code…"));
  const code = h("div", { class: "code", id: "binding-code" });
  const status = h("p", { class: "phone-status", id: "phone-status", role: "status" }, evidenceStatusText(S.state.evidence));
  const msg = h("div");
  const placement = placementPanel(api, atSecond);
  placement.update(S.state.evidence);
  let offered = false;
  async function offer() {
    offered = true;
    try {
      const r = await api.post("/api/v1/candidate/binding");
      // Shown as an image (never parsed into the page); an inline SVG may lack its namespace.
      let svg = String(r.qr_svg || "");
      if (!/xmlns=/.test(svg)) svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
      const img = h("img", { alt: L("手机扫码绑定", "Scan with the phone"), src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg) });
      clear(qr).append(img);
      clear(code).append(h("span", { class: "label" }, L("绑定码", "Binding code")), h("strong", null, r.code));
      clear(msg).append(note("info", L("二维码和绑定码在 {t} 前有效；过期后点击【换一个绑定码】。", "Valid until {t}; then get a new code.", { t: at(r.expires_at) })));
    } catch (err) {
      clear(qr);
      clear(msg).append(note("error", err.status === 404 || err.status === 405
        ? L("此服务器暂不支持手机绑定，请联系技术服务。", "This server cannot bind phones yet: contact tech support.")
        : L("无法生成二维码：{m}", "Cannot make the QR code: {m}", { m: err.message })));
    }
  }
  const next = button(L("下一步", "Next"), () => {
    store.bindingSeen = true;
    save();
    route();
  }, { class: "primary", aria: "下一步" });
  const qrActions = h("div", { class: "actions" }, button(L("换一个绑定码", "New code"), offer, { class: "secondary" }));
  const intro = note("info", L("用手机相机扫描下方二维码（或在手机上打开考试手机页面并输入绑定码），按手机上的提示环拍房间，然后把手机放在身体侧后方约 45°、能拍到您和电脑屏幕的位置，开始录制。", "Scan the QR code with the phone camera (or type the binding code on the phone page), sweep the room as the phone guides you, then place the phone behind you at about 45° so it sees you and the screen, and start recording."));
  const qrPart = h("div", { id: "qr-part" }, h("div", { class: "grid two" }, h("div", null, qr), h("div", null, code, status, msg, qrActions)));
  const connectedActions = h("div", { class: "actions" }, button(L("重新显示二维码", "Show the QR code again"), () => {
    // Kept in the view's argument so a re-render (language switch) keeps it shown.
    S.viewArg = { ...(S.viewArg || {}), qr: true };
    layout();
  }, { class: "secondary" }));
  const connected = h("div", { class: "phone-connected", id: "phone-connected", hidden: true },
    h("p", { class: "note ok", role: "status" }, h("strong", null, L("手机已连接并在录制", "The phone is connected and recording")),
      L("。请保持手机位置不动，不要关闭手机上的页面，考试结束后再在手机上点击【结束录制】。", ". Keep the phone still and its page open; stop it on the phone after the exam.")),
    h("p", { class: "hint" }, L("如需换用另一部手机，请点击【重新显示二维码】，用新手机扫码绑定。", "To use another phone instead, click Show the QR code again and scan it with the new phone.")),
    connectedActions);
  let seen = S.state.evidence ? S.state.evidence.status : null;
  let wasFolded = false;
  function layout() {
    const now = S.state.evidence ? S.state.evidence.status : null;
    // A phone that stops recording (a replaced phone goes through its sweep and placement)
    // folds the QR code again once it records.
    if (now !== "recording" && seen === "recording" && S.viewArg && S.viewArg.qr) S.viewArg = { ...S.viewArg, qr: false };
    seen = now;
    const folded = now === "recording" && !(S.viewArg && S.viewArg.qr);
    intro.hidden = qrPart.hidden = folded;
    connected.hidden = !folded;
    (folded ? connectedActions : qrActions).append(next);
    // The code on show was used up by the phone that bound with it: unfolded, a fresh one.
    if (!folded && (!offered || wasFolded)) offer();
    wasFolded = folded;
  }
  layout();
  const poll = async () => {
    try {
      await refreshState();
      status.textContent = evidenceStatusText(S.state.evidence);
      placement.update(S.state.evidence);
      layout();
    } catch {
      /* offline */
    }
    later(poll, 3000);
  };
  later(poll, 3000);
  return card(
    stepTitle("binding", "绑定手机佐证摄像头", "bind the phone camera"),
    connected,
    intro,
    placement.el,
    qrPart,
  );
};
