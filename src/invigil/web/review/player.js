// The player controls shared by the reviewer's page and the examiner's scoring view: play /
// pause, −10 s / +10 s, speed, a seek bar over the whole recording (with the question release
// and each answer's end marked on it), and jump buttons 开始答题 (the question release at T)
// and 第1题, 第2题 … (each answer's start).
//
// Answer boundaries come from the audio analysis' `answer_end` markers: the keyword markers
// (「该题回答完毕」) where the keyword model ran, else the pause fallback, else none — then
// 开始答题 is the only jump.

import { h } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";
import { offset } from "./labels.js";

export const EXAMINER_SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
const STEP_MS = 10000;

/**
 * The answers to jump to: [{number, start, end}] in server ms, from the boundaries
 * ([{at, method, extra}]), the question release (ms) and the number of questions.
 * Answer 1 starts at the release; answer n+1 where answer n ended.
 */
export function answerMarks(boundaries, questionsAt, count) {
  const valid = (boundaries || [])
    .map((b) => ({ ...b, t: Date.parse(b.at) }))
    .filter((b) => Number.isFinite(b.t) && !b.extra && (!Number.isFinite(questionsAt) || b.t > questionsAt));
  const keyword = valid.filter((b) => b.method === "keyword");
  const chosen = (keyword.length ? keyword : valid.filter((b) => b.method !== "keyword")).sort((a, b) => a.t - b.t);
  if (!chosen.length || !Number.isFinite(questionsAt)) return [];
  const ends = count > 0 ? chosen.slice(0, count) : chosen;
  const n = count > 0 ? Math.min(count, ends.length + 1) : ends.length;
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ number: i + 1, start: i === 0 ? questionsAt : ends[i - 1].t, end: ends[i] ? ends[i].t : null, method: chosen[0].method || "pause" });
  }
  return out;
}

/** What to say beside 开始答题 when there are no answers to jump to: why there are none, from
 * where the audio analysis stands (none, waiting, unavailable, partial, done; the reviewer's
 * page works it out from the log, the scoring sheet gets it from the server). */
export function noAnswersHintFor(audio, released = true) {
  if (released === false) return tr("试题尚未发放。", "The questions are not released yet.");
  if (audio === "done" || audio === "partial") return tr("未检测到回答结束标记，请从开始答题处观看。", "No answer markers: watch from the question release.");
  if (audio === "none") return tr("摄像头尚未开始录制。", "The webcam has not started recording.");
  if (audio === "unavailable") return tr("音频无法分析，请从开始答题处观看。", "The audio could not be analysed: watch from the question release.");
  return tr("音频尚未分析，请从开始答题处观看。", "The audio is not analysed yet: watch from the question release.");
}

/**
 * Controls for a SyncPlayer. Returns {element, update(t)}: call update from the player's
 * onTime so the seek bar, clock and play button follow the clock.
 * questionsAt: the question release (server ms) or NaN; answers: from answerMarks;
 * noAnswersHint: what to say beside 开始答题 when there are no answers (why there are none).
 */
export function playerControls(player, { questionsAt = NaN, answers = [], speeds = EXAMINER_SPEEDS, noAnswersHint = null } = {}) {
  const playBtn = h("button", { type: "button", class: "primary", id: "play", onclick: () => player.toggle() }, tr("播放", "Play"));
  const speed = h(
    "select",
    { id: "speed", onchange: () => player.setRate(Number(speed.value)) },
    speeds.map((s) => h("option", { value: String(s), selected: s === 1 }, `${s}×`)),
  );
  const clockEl = h("output", { id: "clock", "aria-live": "off" });
  const span = () => Math.max(player.end - player.start, 1000);
  const seek = h("input", {
    type: "range",
    id: "seek",
    class: "seek",
    min: "0",
    max: String(span()),
    step: "1000",
    value: "0",
    "aria-label": tr("进度条", "Seek bar"),
  });
  seek.addEventListener("input", () => player.seek(player.start + Number(seek.value)));
  const marksBox = h("div", { class: "seek-marks", "aria-hidden": "true" });
  const bar = h("div", { class: "seek-bar" }, seek, marksBox);

  function drawMarks() {
    const pct = (t) => `${Math.min(100, Math.max(0, ((t - player.start) / span()) * 100)).toFixed(3)}%`;
    const marks = [];
    if (Number.isFinite(questionsAt)) marks.push(h("span", { class: "mark release", style: { left: pct(questionsAt) }, title: tr("开始答题", "Questions released") }));
    for (const a of answers) {
      if (a.end != null) {
        marks.push(h("span", { class: "answer-span", style: { left: pct(a.start), width: `calc(${pct(a.end)} - ${pct(a.start)})` } }));
        marks.push(h("span", { class: "mark answer-end", style: { left: pct(a.end) }, title: tr("第{n}题结束", "End of answer {n}", { n: a.number }), "data-answer": String(a.number) }));
      }
    }
    marksBox.replaceChildren(...marks);
  }

  const jumps = h("div", { class: "jumps", id: "jumps" });
  if (Number.isFinite(questionsAt)) {
    jumps.append(h("button", { type: "button", class: "jump-release", onclick: () => player.seek(questionsAt) }, tr("开始答题", "Questions released")));
  }
  for (const a of answers) {
    jumps.append(
      h(
        "button",
        { type: "button", class: "jump-answer", "data-answer": String(a.number), onclick: () => player.seek(a.start), title: tr("第{n}题回答开始", "Start of answer {n}", { n: a.number }) },
        // The examiner labels are Chinese in both languages (DESIGN: 第1题, 第2题 …).
        `第${a.number}题`,
      ),
    );
  }
  if (!answers.length && Number.isFinite(questionsAt)) {
    jumps.append(h("span", { class: "muted hint" }, noAnswersHint || noAnswersHintFor("done")));
  }

  const element = h(
    "div",
    { class: "player-controls" },
    h(
      "div",
      { class: "controls" },
      h("button", { type: "button", class: "step", onclick: () => player.seek(player.t - STEP_MS), title: tr("后退 10 秒", "Back 10 s") }, "−10 s"),
      playBtn,
      h("button", { type: "button", class: "step", onclick: () => player.seek(player.t + STEP_MS), title: tr("前进 10 秒", "Forward 10 s") }, "+10 s"),
      h("label", { for: "speed", class: "inline" }, tr("倍速", "Speed")),
      speed,
      clockEl,
    ),
    bar,
    jumps.childNodes.length ? jumps : null,
  );
  let drawnSpan = null;

  function update(t) {
    // The end grows once a recording's real duration is known (loadedmetadata).
    if (drawnSpan !== span()) {
      drawnSpan = span();
      seek.max = String(drawnSpan);
      drawMarks();
    }
    const at = Math.round(t - player.start);
    seek.value = String(at);
    seek.setAttribute("aria-valuetext", `${offset(at)} / ${offset(drawnSpan)}`);
    clockEl.textContent = `${offset(at)} / ${offset(drawnSpan)}`;
    playBtn.textContent = player.playing ? tr("暂停", "Pause") : tr("播放", "Play");
  }
  update(player.t);
  return { element, update, clock: clockEl };
}
