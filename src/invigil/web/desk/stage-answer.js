// 8 开始答题: the waiting countdown, the questions at T, the answer countdown.

import { $, clear, h } from "../shared/dom.js";
import { countdown } from "../shared/i18n.js";
import { backlogText, questionsOut, renderTop, rerender, show } from "./shell.js";
import { askFinish, finish } from "./stage-finish.js";
import { L, S, VIEWS, api, at, button, later, note, until, video } from "./state.js";

// 8 开始答题 ---------------------------------------------------------------------------------------

export function infoPanel() {
  const st = S.state;
  return h("aside", { class: "side" },
    video(S.cam, { class: "preview selfview" }),
    h("dl", { class: "who" },
      h("dt", null, L("姓名", "Name")), h("dd", { id: "who-name" }, st.candidate.name),
      h("dt", null, L("准考证", "Ticket")), h("dd", { id: "who-ticket" }, st.candidate.ticket),
      h("dt", null, L("顺序号", "Number")), h("dd", { id: "who-lot" }, st.lot === null ? "—" : String(st.lot)),
      h("dt", null, L("考场", "Room")), h("dd", null, st.candidate.room.name),
    ),
    h("p", { class: "hint", id: "backlog" }, backlogText()),
    button(L("结束考试", "Finish the exam"), askFinish, { class: finishClass(), aria: "结束考试", id: "finish-exam" }),
  );
}

// Before T a big red button beside the countdown invites a nervous candidate to end an exam
// that has not begun; it stays (the candidate may still give up) but looks like any other
// button until the questions are out, and its confirmation then says what it really means.
function finishClass() {
  return questionsOut() ? "danger" : "secondary quiet";
}

VIEWS.waiting = () => {
  const st = S.state;
  const cd = h("div", { class: "countdown big", id: "countdown", role: "timer" });
  const msg = h("div", { id: "questions-message" });
  let fetching = false;
  S.tick = () => {
    const left = until(st.schedule.starts_at);
    cd.textContent = countdown(left);
    if (left <= 0 && !fetching) {
      fetching = true;
      renderTop(); // 获取试题 appears now
      // The waiting view outlives T while the questions fail to arrive (offline): from T on
      // 结束考试 means handing in, and it looks so.
      const fin = $("#finish-exam");
      if (fin) fin.className = finishClass();
      loadQuestions().finally(() => later(() => (fetching = false), 1000));
    }
  };
  return h("div", { class: "exam" },
    h("section", { class: "card main-col" },
      h("h1", null, L("待考", "Waiting")),
      note("info", L("考试将于 {t} 开始。请保持端坐、正对摄像头，试题会在开考时自动显示，无需任何操作。", "The exam starts at {t}. Sit facing the camera; the questions appear by themselves.", { t: at(st.schedule.starts_at) })),
      h("p", { class: "hint" }, L("距开考还有", "Starts in")),
      cd,
      msg,
    ),
    infoPanel(),
  );
};

export async function loadQuestions(manual = false) {
  const msg = $("#questions-message");
  try {
    const t0 = performance.now();
    const r = await api.get("/api/v1/candidate/questions");
    S.clock.observe(r.now, t0, performance.now());
    S.questions = r;
    S.questionsError = null;
    if (S.view !== "answering") show("answering");
    else rerender();
  } catch (err) {
    S.questionsError = err;
    if (err.code === "not_started") {
      if (msg && manual) clear(msg).append(note("info", L("考试尚未开始，试题将在开考时自动显示。", "Not started yet: the questions appear at the start.")));
      return;
    }
    if (msg) clear(msg).append(note("error", err.offline ? L("网络不通，试题获取失败。录像仍在继续，网络恢复后请点击左上角【获取试题】。", "No network: could not get the questions. Recording continues; click Get questions when back online.") : err.message));
  }
}

export function startAnswering() {
  if (S.questions) show("answering");
  else {
    show("answering");
    loadQuestions();
  }
}

VIEWS.answering = () => {
  const q = S.questions;
  const cd = h("div", { class: "countdown", id: "answer-countdown", role: "timer" });
  // Read at every tick: extra time granted meanwhile arrives with the heartbeat.
  const deadline = () => (S.questions && S.questions.deadline) || S.state.schedule.deadline;
  S.tick = () => {
    const left = until(deadline());
    cd.textContent = countdown(left);
    cd.classList.toggle("urgent", left < 5 * 60000);
    if (left <= 0 && !S.finishing) finish("deadline");
  };
  const list = q
    ? h("ol", { class: "questions", id: "questions" }, q.questions.map((x) => h("li", null, h("p", null, x.text))))
    : h("p", { class: "hint" }, L("正在获取试题…如长时间没有显示，请点击左上角【获取试题】。", "Getting the questions… if they do not appear, click Get questions at the top left."));
  return h("div", { class: "exam" },
    h("section", { class: "card main-col" },
      h("div", { class: "row spread" }, h("h1", null, L("答题中", "Answering")), h("div", null, h("span", { class: "hint" }, L("距考试结束", "Time left")), " ", cd)),
      note("info", L("请按顺序口头作答。每答完一题，请清楚地说「该题回答完毕」，再回答下一题。全部答完后点击【结束考试】。", "Answer aloud, in order. After each answer say clearly 「该题回答完毕」. When done, click Finish.")),
      list,
      h("div", { id: "questions-message" }),
    ),
    infoPanel(),
  );
};
