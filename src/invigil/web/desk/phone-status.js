// The evidence phone's state in the header through the exam (device confirm, waiting,
// answering): the candidate sees at a glance that the phone still records, and is told at once
// when it stopped or dropped off. The state arrives with the heartbeat (every 5 s), so the exam
// pages poll nothing more for it.

import { $ } from "../shared/dom.js";
import { HEARTBEAT_MS, L, S, isOnline } from "./state.js";

const EXAM_VIEWS = new Set(["confirm", "waiting", "answering"]);
// Without an answer from the server this long (offline, a loaded server's Retry-After) the
// last word about the phone is old: the pill says it does not know rather than 手机录制中.
const STALE_MS = 4 * HEARTBEAT_MS;
let heardAt = performance.now(); // when the server last told this page the phone's state

/** The heartbeat's `evidence` ({status}); only the status is new, the rest of the state stays. */
export function notePhone(evidence) {
  if (!evidence || !S.state) return;
  S.state.evidence = { ...(S.state.evidence || {}), status: evidence.status };
  heardAt = performance.now();
  renderPhone();
}

function known() {
  return isOnline() && performance.now() - heardAt < STALE_MS;
}

export function renderPhone() {
  const el = $("#phone-state");
  if (!el) return;
  const st = S.state;
  const status = st && st.evidence ? st.evidence.status : null;
  if (!st || st.exam.evidence_camera !== "required" || !EXAM_VIEWS.has(S.view) || !status) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  if (!known()) {
    el.textContent = L("手机状态未知", "Phone status unknown");
    el.className = "net unknown";
    el.dataset.status = "unknown";
    return;
  }
  const ok = status === "recording";
  el.textContent = ok
    ? L("手机录制中", "Phone recording")
    : status === "offline"
      ? L("手机已断开，请检查手机", "Phone disconnected: check it")
      : L("手机未在录制，请检查手机", "Phone not recording: check it");
  el.className = `net ${ok ? "ok" : "bad"}`;
  el.dataset.status = status;
}
