// 7 设备确认: self-view, the screen being recorded, camera/microphone switch, 【进入待考】.

import { $, clear, h } from "../shared/dom.js";
import * as dev from "./device.js";
import { switchDevices } from "./media.js";
import { backlogText, show, stepTitle } from "./shell.js";
import { loadQuestions } from "./stage-answer.js";
import { cameraError, fillSelects } from "./stage-device.js";
import { L, S, VIEWS, button, card, note, save, store, until, video } from "./state.js";

// 7 设备确认 ---------------------------------------------------------------------------------------

export function recordingStatus() {
  const rows = ["webcam", "screen"].map((kind) => {
    const on = S.recorders[kind] && S.recorders[kind].active;
    return h("li", { class: on ? "ok" : "bad" }, kind === "webcam" ? L("摄像头与麦克风录像", "Camera and microphone") : L("屏幕录像", "Screen"), "：", on ? L("录制中", "recording") : L("未在录制", "not recording"));
  });
  return h("div", { class: "recstatus" }, h("ul", { class: "checklist compact" }, rows), h("p", { class: "hint", id: "backlog" }, backlogText()));
}

VIEWS.confirm = () => {
  const self = video(S.cam, { class: "preview selfview" });
  const scr = video(S.screen, { class: "preview small" });
  const camSel = h("select", { id: "camera-select", "aria-label": L("选择摄像头", "Camera") });
  const micSel = h("select", { id: "mic-select", "aria-label": L("选择麦克风", "Microphone") });
  const meter = h("div", { class: "meter", role: "meter", "aria-label": L("麦克风音量", "Microphone level") }, h("span"));
  const msg = h("div", { id: "confirm-message" });
  fillSelects(camSel, micSel);
  const startMeter = () => {
    if (S.meter) S.meter.stop();
    S.meter = new dev.LevelMeter(S.cam, (level) => (meter.firstChild.style.width = `${Math.round(level * 100)}%`));
  };
  startMeter();
  const change = async () => {
    clear(msg).append(note("info", L("正在切换设备，录像不会中断…", "Switching; recording continues…")));
    try {
      await switchDevices({ cameraId: camSel.value, micId: micSel.value });
      self.srcObject = S.cam;
      startMeter();
      clear(msg).append(note("ok", L("已切换。", "Switched.")));
      rerenderStatus();
    } catch (err) {
      clear(msg).append(note("error", cameraError(err)));
    }
  };
  camSel.onchange = change;
  micSel.onchange = change;
  const statusSlot = h("div", null, recordingStatus());
  const rerenderStatus = () => clear(statusSlot).append(recordingStatus());
  const refreshDevices = button(L("刷新设备", "Refresh devices"), async () => {
    await fillSelects(camSel, micSel);
    if (!S.cam.getTracks().every((t) => t.readyState === "live")) await change();
    rerenderStatus();
    clear(msg).append(note("ok", L("设备列表已更新。", "Device list updated.")));
  }, { class: "secondary", aria: "刷新设备" });
  const go = button(L("进入待考", "Go to waiting room"), () => {
    store.confirmed = true;
    save();
    show(until(S.state.schedule.starts_at) <= 0 ? "answering" : "waiting");
    if (S.view === "answering") loadQuestions();
  }, { class: "primary", aria: "进入待考" });
  S.leave = () => {};
  S.tick = () => {
    if (until(S.state.schedule.starts_at) <= 0 && Date.now() - (S.questionsTriedAt || 0) > 1000) {
      // T has come: the questions appear by themselves even before 【进入待考】 was pressed.
      S.questionsTriedAt = Date.now();
      store.confirmed = true;
      save();
      loadQuestions();
      return;
    }
    const n = Date.now();
    if (!S._lastStatus || n - S._lastStatus > 2000) {
      S._lastStatus = n;
      rerenderStatus();
    }
  };
  return card(
    stepTitle("confirm", "设备确认", "confirm your devices"),
    note("info", L("录像已经开始。请确认画面中能看到您的正脸、说话时音量条会跳动。如需更换摄像头或麦克风，请在下方选择（录像不会中断）；设备插拔后点击【刷新设备】。确认无误后点击【进入待考】。", "Recording has started. Check your face is visible and the level bar moves. Change camera or microphone below (recording continues); after plugging devices click Refresh devices. Then click Go to waiting room.")),
    h("div", { class: "grid two" },
      h("div", null, self, h("label", null, L("摄像头", "Camera"), camSel), h("label", null, L("麦克风", "Microphone"), micSel), meter),
      h("div", null, h("p", { class: "hint" }, L("正在录制的屏幕：", "Screen being recorded:")), scr, statusSlot, msg),
    ),
    h("div", { class: "actions" }, refreshDevices, go),
  );
};
