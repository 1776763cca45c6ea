// 9 结束考试: stop recording, finish, and the upload status until 交卷完成.

import { $, clear, h } from "../shared/dom.js";
import { formatBytes } from "../shared/i18n.js";
import { stopSnapshots } from "./media.js";
import { evidenceRequired, refreshState } from "./session.js";
import { questionsOut, rerender, show } from "./shell.js";
import { L, S, VIEWS, api, at, button, card, events, note, save, store } from "./state.js";

// 9 结束考试 ---------------------------------------------------------------------------------------

export function confirmDialog(text, okLabel = "确定", cancelLabel = "取消") {
  return new Promise((resolve) => {
    const root = $("#overlay");
    const close = (v) => {
      clear(root);
      resolve(v);
    };
    const ok = button(L(okLabel, okLabel === "确定" ? "OK" : okLabel), () => close(true), { class: "danger", aria: okLabel });
    const cancel = button(L(cancelLabel, cancelLabel === "取消" ? "Cancel" : cancelLabel), () => close(false), { class: "secondary", aria: cancelLabel });
    clear(root).append(h("div", { class: "backdrop" },
      h("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "dialog-text" },
        h("p", { id: "dialog-text" }, text),
        h("div", { class: "actions" }, cancel, ok))));
    cancel.focus();
  });
}

export async function askFinish() {
  // Decided at the click, by the server's clock: before T there is nothing to hand in, and
  // finishing then (the server allows it, and it is final) means giving up the exam.
  const text = questionsOut()
    ? L("确认现在交卷吗？交卷后录像停止，不能再回到考试。", "Submit now? Recording stops and you cannot return to the exam.")
    : L(
      "考试尚未开始（{t} 开考）。现在结束考试，就是放弃本场考试：您将看不到试题，录像停止，也不能再进入本场考试。确定要放弃本场考试吗？",
      "The exam has not started yet (it starts at {t}). Ending now means giving up this whole exam: you will not see the questions, recording stops, and you cannot enter this exam again. Give up this exam?",
      { t: at(S.state.schedule.starts_at) },
    );
  const ok = await confirmDialog(text);
  if (ok) finish("candidate");
}

export async function finish(reason) {
  if (S.finishing) return;
  S.finishing = true;
  store.finishing = true;
  save();
  if (S.signals) S.signals.stop();
  stopSnapshots();
  show("uploads");
  await Promise.all(Object.values(S.recorders).filter(Boolean).map((r) => r.stop()));
  for (const s of [S.cam, S.screen]) if (s) s.getTracks().forEach((t) => t.stop());
  if (S.meter) S.meter.stop();
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  rerender();
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15000)) {
    try {
      await api.post("/api/v1/candidate/finish", { reason });
      break;
    } catch (err) {
      if (!err.offline && err.status < 500 && err.status !== 401) break; // already finished, or refused for good
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  try {
    await refreshState();
  } catch {
    /* offline */
  }
  events.flush();
  rerender();
}

export const KIND_NAME = {
  webcam: () => L("摄像头录像", "Camera recording"),
  screen: () => L("屏幕录像", "Screen recording"),
  evidence: () => L("手机佐证录像", "Phone recording"),
};

VIEWS.uploads = () => {
  const rows = h("div", { class: "uploads", id: "upload-rows" });
  const verdict = h("div", { class: "verdict", id: "upload-verdict", "aria-live": "polite" });
  const serverBox = h("div", { id: "server-uploads" });
  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      S.uploads = await api.get("/api/v1/candidate/uploads");
    } catch (err) {
      if (err.code === "uploads_closed") S.uploads = { closed: true };
    }
    polling = false;
    draw();
  }
  function draw() {
    clear(rows);
    const held = S.engine ? S.engine.summary() : [];
    const local = held.filter((s) => s.produced);
    const perKind = {};
    for (const s of local) perKind[s.kind] = (perKind[s.kind] || 0) + 1;
    const seen = {};
    for (const s of local) {
      seen[s.kind] = (seen[s.kind] || 0) + 1;
      // A device change or a reload starts a new recording of the same kind: number them.
      const part = perKind[s.kind] > 1 ? L("（第 {n} 段）", " (part {n})", { n: seen[s.kind] }) : "";
      const pct = s.produced ? Math.round((s.acked / s.produced) * 100) : 100;
      const state = s.error
        ? L("上传出错（{e}），请联系监考员", "Upload error ({e}): tell the proctor", { e: s.error })
        : s.finalized ? L("已完成", "Complete")
          : s.pending ? L("正在上传：{a}/{p} 段，剩余 {b}", "Uploading: {a}/{p} chunks, {b} left", { a: s.acked, p: s.produced, b: formatBytes(s.pendingBytes) })
            : s.stopped ? L("正在确认…", "Confirming…") : L("录制中", "Recording");
      rows.append(h("div", { class: `upload-row ${s.finalized ? "ok" : s.error ? "bad" : ""}`, "data-kind": s.kind },
        h("span", { class: "name" }, KIND_NAME[s.kind] ? KIND_NAME[s.kind]() : s.kind, part),
        h("progress", { max: "100", value: String(s.finalized ? 100 : pct) }),
        h("span", { class: "state" }, state)));
    }
    const up = S.uploads;
    clear(serverBox);
    // Recordings of an earlier login (a crash, another computer) that this browser does not
    // hold: only that browser can finish them; otherwise the server keeps what it has when
    // uploads close (recordings/closeout.py).
    const mine = new Set(held.map((s) => s.recordingId));
    const elsewhere = up && up.recordings ? up.recordings.filter((r) => r.kind !== "evidence" && r.state !== "finalized" && !mine.has(r.id)) : [];
    const elsewhereIds = new Set(elsewhere.map((r) => r.id));
    for (const r of elsewhere) {
      serverBox.append(h("div", { class: "upload-row", "data-kind": r.kind, "data-elsewhere": "" },
        h("span", { class: "name" }, KIND_NAME[r.kind] ? KIND_NAME[r.kind]() : r.kind, L("（之前登录时）", " (earlier login)")),
        h("progress", { max: "100", value: "0" }),
        h("span", { class: "state" }, L("服务器已收到 {n} 段，其余部分不在本机", "{n} chunks on the server; the rest is not on this computer", { n: r.received }))));
    }
    if (up && up.recordings) {
      const phone = up.recordings.filter((r) => r.kind === "evidence");
      if (evidenceRequired()) {
        const done = phone.length && phone.every((r) => r.state === "finalized");
        serverBox.append(h("div", { class: `upload-row ${done ? "ok" : ""}`, "data-kind": "evidence" },
          h("span", { class: "name" }, KIND_NAME.evidence()),
          // The desk cannot know how much the phone still holds: while its chunks arrive the
          // bar is indeterminate (moving), not an empty bar that reads as "nothing happens".
          h("progress", done ? { max: "100", value: "100" } : phone.length ? { max: "100" } : { max: "100", value: "0" }),
          h("span", { class: "state" }, done ? L("已完成", "Complete") : phone.length
            ? L("手机正在上传：已收到 {n} 段。请在手机上点击【结束录制】并保持手机联网，直到显示上传完成。", "The phone is uploading ({n} chunks so far). Stop recording on the phone and keep it online until it says done.", { n: phone.reduce((a, r) => a + r.received, 0) })
            : L("尚未收到手机录像。请检查手机是否在录制、是否联网。", "No phone recording received yet: check the phone."))));
      }
    }
    const localDone = !!S.engine && S.engine.allFinalized() && S.engine.backlog().chunks === 0 && !S.engine.summary().some((s) => s.error);
    const serverDone = !!(up && up.complete);
    const stillRecording = Object.values(S.recorders).some((r) => r && r.active);
    clear(verdict);
    if (localDone && serverDone && !stillRecording) {
      verdict.append(
        h("div", { class: "done-banner", role: "status", id: "submit-done" }, "交卷完成"),
        h("p", null, L("全部录像已安全上传，您可以关闭本页面。{t} 前可以随时重新打开本页查看上传状态。", "Everything is uploaded: you may close this page. You can reopen it until {t} to check.", { t: up.uploads_close_at ? at(up.uploads_close_at) : "" })),
      );
      store.done = true;
      save();
    } else if (localDone && !stillRecording && up && up.problems && up.problems.length && up.problems.every((p) => p.reason === "not_finalized" && elsewhereIds.has(p.recording_id))) {
      verdict.append(note("info", L(
        "本机的录像已全部上传。之前登录时的录像不在本机：如果之前用的是另一台电脑或浏览器，请在那台电脑上重新打开考试页面，录像会自动补传；否则可以关闭本页面，上传截止（{t}）时系统会保存服务器已收到的部分，并记入考试记录。",
        "Everything on this computer is uploaded. Recordings from an earlier login are not here: if that was another computer or browser, open the exam page there and they upload by themselves; otherwise you may close this page, and when uploads close ({t}) the server keeps what it received and notes it in the exam record.",
        { t: up.uploads_close_at ? at(up.uploads_close_at) : "" })));
    } else if (up && up.closed) {
      verdict.append(note("error", L("上传时间已截止。如仍有未上传的录像，请联系监考员。", "Uploads have closed. If anything is missing, contact the proctor.")));
    } else {
      verdict.append(note(navigator.onLine ? "info" : "error", navigator.onLine
        ? L("正在上传录像，请不要关闭本页面、不要断开网络。上传失败会自动重试。", "Uploading: do not close this page or disconnect. Failures retry by themselves.")
        : L("网络已断开。录像保存在本机，网络恢复后会自动继续上传，请不要关闭本页面。", "Offline: the recordings are kept here and upload when the network is back. Keep the page open.")));
    }
  }
  let lastPoll = 0;
  S.tick = () => {
    const n = Date.now();
    if (n - lastPoll > 3000) {
      lastPoll = n;
      poll();
    }
    draw();
  };
  return card(
    L("交卷与上传", "Submitting and uploading"),
    note("info", L("考试已结束，录像已停止。下面是每路录像的上传进度。", "The exam has ended and recording stopped. Below is each recording's upload progress.")),
    rows,
    serverBox,
    verdict,
  );
};
