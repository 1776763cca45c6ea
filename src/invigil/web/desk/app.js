// The candidate's desk client: the whole exam day in one page, one module per stage.
//
// Stages (DESIGN.md): 设备准备 → 人脸登录 → 佐证绑定 → 抽签 → 阅读考试附件 → 进入考试 → 设备确认
// → 开始答题 → 结束考试, then the upload status. The server decides the stage (GET state); this
// page shows it, keeps the recordings safe (IndexedDB first, see ../shared/upload.js) and
// reports integrity signals.
//
// Modules: state.js (what every stage shares), shell.js (header, banner, show), session.js
// (login state, heartbeat, routing by stage), media.js (screen share, recorders, snapshots),
// help.js (求助), and stage-*.js, one per stage, each registering its view in VIEWS.

import { $ } from "../shared/dom.js";
import { currentLang, onLangChange, setLang } from "../shared/i18n.js";
import { S, emit } from "./state.js";
import { renderNet, rerender } from "./shell.js";
import { boot } from "./session.js";
import { renderHelp } from "./help.js";
import "./stage-device.js";
import "./stage-login.js";
import "./stage-binding.js";
import "./stage-lot.js";
import "./stage-attachments.js";
import "./stage-enter.js";
import "./stage-confirm.js";
import "./stage-answer.js";
import "./stage-finish.js";


window.addEventListener("error", (e) => {
  if (S.token) emit("client_error", { where: "window", message: String(e.message).slice(0, 300), source: `${e.filename}:${e.lineno}` });
});
window.addEventListener("unhandledrejection", (e) => {
  if (S.token) emit("client_error", { where: "promise", message: String(e.reason).slice(0, 300) });
});
addEventListener("online", renderNet);
addEventListener("offline", renderNet);
window.addEventListener("beforeunload", (e) => {
  const recording = Object.values(S.recorders).some((r) => r && r.active);
  if (recording || (S.engine && S.engine.backlog().chunks)) {
    e.preventDefault();
    e.returnValue = "";
  }
});

$("#lang").addEventListener("click", () => setLang(currentLang() === "en" ? "zh-CN" : "en"));
onLangChange(() => {
  rerender();
  if (S.help.open) renderHelp();
});

boot();
