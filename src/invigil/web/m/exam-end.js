// The end of the exam as the phone says it. The phone learns from the server (the answers of
// its status heartbeat and of /phone/state: `ended`, `deadline`) that the candidate submitted on
// the desk or that their time is over. On the recording screen only words follow: the recording
// goes on until the candidate taps 结束录制. A phone still sweeping or being placed when the
// exam ends (a replacement phone, one that never got to record) has nothing left to film: the
// step's guide, camera and buttons (marked stepOnly) give way to 结束录制, which uploads what it
// holds and ends at 上传完成.

import { $, clear, h } from "../shared/dom.js";
import { currentLang, tr as L } from "../shared/i18n.js";

const SCREENS = new Set(["sweep", "place", "recording"]);

/** "submitted" | "time_over" | null: the server's word, or its deadline on the server's clock
 * between two answers. */
export function examEnded(S) {
  if (S.ended) return S.ended;
  if (S.deadline && Date.now() + S.skew >= S.deadline) return "time_over";
  return null;
}

export function stopQuestion(end) {
  if (end === "submitted") return L("考生已交卷。结束录制并上传剩余录像？", "The candidate has submitted. Stop recording and upload the rest?");
  if (end === "time_over") return L("考试时间已到。结束录制并上传剩余录像？", "The exam time is over. Stop recording and upload the rest?");
  return L("考试尚未结束。现在结束录制，考试余下的时间将没有手机佐证录像。确定提前结束录制吗？", "The exam has not ended. If you stop now, the rest of the exam has no phone evidence. Stop recording early?");
}

/** The notice's place on a screen, shown by updateExamEnd. */
export function endNotice() {
  return h("div", { class: "exam-ended", id: "exam-ended", role: "status", hidden: true });
}

/** Marks what belongs to the sweep or placement step only: it leaves once the exam is over (by
 * a class on the screen, so the step's own hiding and showing is left as it was). */
export function stepOnly(...els) {
  for (const el of els) if (el) el.dataset.step = "";
  return els;
}

/** 结束录制 on the sweep and placement screens, shown once the exam is over. */
export function endButton(onEnd) {
  return h("button", { type: "button", class: "big", id: "end-after-exam", onclick: onEnd }, L("结束录制", "Stop recording"));
}

export function updateExamEnd(S) {
  const el = $("#exam-ended");
  if (!el) return;
  const end = SCREENS.has(S.phase) ? examEnded(S) : null;
  if (el.parentElement) el.parentElement.classList.toggle("exam-over", !!end);
  if (!end) {
    el.hidden = true;
    return;
  }
  const key = `${end} ${S.phase} ${currentLang()}`;
  if (el.hidden || el.dataset.key !== key) {
    const head = end === "submitted" ? L("考生已交卷，考试已结束。", "The candidate has submitted: the exam is over.") : L("考试时间已到，考试已结束。", "The exam time is over.");
    const todo = S.phase === "recording"
      ? L("请点击下方【结束录制】，并保持本页面打开，直到录像上传完成。点击之前手机仍在录制。", "Tap Stop recording below and keep this page open until the upload finishes. Until you tap, the phone keeps recording.")
      : L("手机无需再环拍或录制。请点击下方【结束录制】，并保持本页面打开，直到显示“上传完成”。", "The phone need not sweep or record any more. Tap Stop recording below and keep this page open until it says upload complete.");
    clear(el).append(h("strong", null, head), h("br"), todo);
    el.dataset.end = end;
    el.dataset.key = key;
    if (el.hidden) {
      try {
        if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
      } catch {
        /* ignore */
      }
    }
    el.hidden = false;
  }
  const stop = $("#stop-recording");
  if (stop) stop.className = "big"; // now the expected step, no longer a warning
}
