// One candidate's review: the three streams in sync on one clock, the event timeline under
// them (click to jump all players), rulings on each suspected violation and the final
// verdict (a violation needs a second reviewer), snapshots, answer data, proctor notes and
// warnings, help conversation, the system log and who viewed the file.

import { clear, h } from "../shared/dom.js";
import { currentLang, examDateTime, examTime, tr, zoneNote } from "../shared/i18n.js";
import { confirmDialog } from "../shared/confirm.js";
import { byTime } from "../shared/names.js";
import { actionLabel, auditDetail, codeLabel, dataValue, describeData, duration, kindLabel, offset, severityLabel, stageLabel, streamLabel, verdictLabel } from "./labels.js";
import { answerMarks, noAnswersHintFor, playerControls } from "./player.js";
import { SyncPlayer } from "./sync.js";

const STREAMS = ["webcam", "screen", "evidence"];
// Reviewers skim long stretches: beyond the examiner's 2×.
const SPEEDS = [0.5, 1, 1.5, 2, 4, 8];
// Events that are no suspected violation but that a reviewer reads against the recordings, so
// the events lane marks them too (kind → the mark's class in review.css). 试题已送达 answers an
// appeal that the questions showed late.
const LANE_MARKS = { questions_delivered: "delivered" };

export async function renderCandidate(root, ctx, attemptId) {
  const { api, session } = ctx;
  let data = await api.get(`/api/v1/review/attempts/${encodeURIComponent(attemptId)}`);
  const t0 = performance.now();

  const ms = (iso) => (iso ? Date.parse(iso) : NaN);
  // Times of day as the candidate's desk showed them: in the exam's zone, not this browser's.
  const tz = () => (data.exam || {}).utc_offset_minutes;
  const hms = (t) => examTime(t, tz());
  const dateTime = (t) => examDateTime(t, tz());
  const recs = data.recordings || [];
  const laneEvents = (data.events || []).filter((e) => Object.hasOwn(LANE_MARKS, e.kind));
  // The timeline spans the recordings and what the events lane marks (plus the finish);
  // without recordings, entering to finishing. Earlier events (login, lot) jump to its start.
  const sched = data.schedule || {};
  const times = [
    ...recs.map((r) => ms(r.started_at)),
    ...recs.map((r) => (r.duration_s != null ? ms(r.started_at) + r.duration_s * 1000 : ms(r.ended_at))),
    ...(data.flags || []).map((f) => ms(f.at)),
    ...laneEvents.map((e) => ms(e.at)),
    ms(sched.finished_at),
    recs.length ? NaN : ms(sched.entered_at),
  ].filter((x) => Number.isFinite(x));
  const start = times.length ? Math.min(...times) : Date.now();
  const end = times.length ? Math.max(...times) : start;

  // No phone player (and no 无录像 tile) for an exam without the evidence camera, unless a
  // phone recorded anyway.
  const noPhone = (data.exam || {}).evidence_camera === "off" && !recs.some((r) => r.kind === "evidence");
  const streams = STREAMS.filter((k) => !(noPhone && k === "evidence"));
  const player = new SyncPlayer({
    streams: streams.map((kind) => ({
      kind,
      label: streamLabel(kind),
      recordings: recs.filter((r) => r.kind === kind && r.media_url),
    })),
    resolveUrl: (url) => (/[?&](sig|signature|token|t)=/.test(url) ? Promise.resolve(url) : session.blobUrl(url)),
    start,
    end,
    onTime: (t) => onTime(t),
  });
  window.__review = { state: () => player.state(), seek: (iso) => player.seek(Date.parse(iso)), loadedIn: () => performance.now() - t0 };

  // --- header --------------------------------------------------------------------------------
  const c = data.candidate || {};
  const photo = h("img", { class: "photo", alt: tr("报名照片", "Enrolment photo") });
  if (c.photo_url) session.blobUrl(c.photo_url).then((u) => (photo.src = u)).catch(() => {});
  const verdictBadge = h("span", { class: "tag", id: "verdict-badge" });
  const back = data.exam_id || (data.exam && data.exam.id);
  const header = h(
    "section",
    { class: "cand-head card" },
    photo,
    h(
      "div",
      {},
      h("p", {}, back ? h("a", { href: `#triage/${back}` }, "← ", tr("分拣列表", "Triage")) : h("a", { href: "#exams" }, "← ", tr("考试列表", "Exams"))),
      h("h2", {}, `${c.name || ""} · ${c.ticket || ""}`),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, tr("考场", "Room")),
        h("dd", {}, c.room_name ? `${c.room_name}（${c.room}）` : c.room || "—"),
        h("dt", {}, tr("签号", "Lot")),
        h("dd", {}, c.lot == null ? "—" : String(c.lot)),
        h("dt", {}, tr("状态", "Stage")),
        h("dd", {}, stageLabel(data.stage)),
        h("dt", {}, tr("裁定", "Ruling")),
        h("dd", {}, verdictBadge),
      ),
      h("p", { class: "zone-note", id: "zone-note" }, zoneNote(tz())),
    ),
  );

  // Where the search for answer markers stands (the server's word: audio_jobs.progress).
  const audio = data.audio || { state: "waiting", waiting: 0, reason: null };

  // --- players and controls (the module the examiner's view uses too) -------------------------
  const questionsAt = ms(sched.questions_at);
  const answers = answerMarks(
    (data.answer_boundaries || []).map((b) => ({ at: b.at, method: (b.data || {}).method, extra: !!(b.data || {}).extra })),
    questionsAt,
    (data.questions || []).length,
  );
  const controlsBox = playerControls(player, { questionsAt, answers, speeds: SPEEDS, noAnswersHint: noAnswersHintFor(audio.state, sched.questions_released) });
  const controls = controlsBox.element;
  const clockEl = controlsBox.clock;
  const bar = timelineBar();
  const eventsBox = h("div", { class: "events-box" });
  const onlyFlags = h("input", { type: "checkbox", id: "only-flags", onchange: () => renderEvents() });
  const left = h(
    "div",
    { class: "review-left" },
    player.element,
    controls,
    bar.el,
    h("div", { class: "row spread" }, h("h3", {}, tr("事件时间线", "Event timeline")), h("label", { class: "check" }, onlyFlags, tr("只看疑似违纪", "Only suspected violations"))),
    eventsBox,
  );

  /** Why there are no answer markers, in words. */
  function noMarkersText() {
    if (audio.state === "none") return tr("摄像头尚未开始录制，还没有可分析的音频。", "The webcam has not started recording: there is no audio to analyse yet.");
    if (audio.state === "waiting") return tr("音频尚未分析：摄像头录像上传完成后自动分析。", "The audio has not been analysed yet: that happens once the webcam recording is uploaded.");
    if (audio.state === "unavailable") return tr("音频无法分析（{r}），没有回答结束标记。", "The audio could not be analysed ({r}): no answer markers.", { r: audio.reason ? codeLabel(audio.reason) : tr("原因不明", "reason unknown") });
    if (audio.state === "partial") return tr("已分析的音频中未发现回答结束标记，另有 {n} 段录像尚未分析。", "No answer markers in the audio analysed so far; {n} more recording(s) not analysed yet.", { n: audio.waiting });
    return tr("音频分析未发现回答结束标记。", "The audio analysis found no answer markers.");
  }

  // --- right: tabbed panels -------------------------------------------------------------------
  const tabs = [
    ["rulings", tr("裁定", "Rulings")],
    ["snapshots", tr("截图", "Snapshots")],
    ["answers", tr("答题", "Answers")],
    ["notes", tr("监考记录", "Proctor notes")],
    ["help", tr("求助", "Help")],
    ["log", tr("系统日志", "System log")],
    ["audit", tr("访问记录", "Access log")],
  ];
  let tab = "rulings";
  const tabBar = h("div", { class: "tabbar", role: "tablist" });
  const panel = h("div", { class: "panel", role: "tabpanel", id: "panel" });
  const right = h("div", { class: "review-right" }, tabBar, panel);

  root.append(header, h("div", { class: "review-layout" }, left, right));

  function renderTabs() {
    clear(tabBar).append(
      ...tabs.map(([id, label]) =>
        h(
          "button",
          {
            type: "button",
            role: "tab",
            "aria-selected": String(tab === id),
            "aria-controls": "panel",
            class: tab === id ? "active" : "",
            onclick: () => {
              tab = id;
              renderTabs();
              renderPanel();
            },
          },
          label,
        ),
      ),
    );
  }

  function onTime(t) {
    controlsBox.update(t);
    clockEl.textContent = `${hms(t)}  (+${offset(t - start)})`;
    bar.setHead(t);
  }

  // --- the timeline bar: recording spans per stream (gaps visible), flags, answer markers ---
  function timelineBar() {
    const span = Math.max(end - start, 1000);
    const pct = (t) => `${(((t - start) / span) * 100).toFixed(3)}%`;
    const lanes = player.spans().map((s) =>
      h(
        "div",
        { class: "lane", "data-kind": s.kind },
        h("span", { class: "lane-label" }, s.label),
        h(
          "div",
          { class: "lane-track" },
          s.spans.map(([a, b]) => h("span", { class: "span", style: { left: pct(a), width: `${Math.max(0.3, ((b - a) / span) * 100)}%` }, title: `${hms(a)}–${hms(b)}` })),
        ),
      ),
    );
    // A named event's mark (a flag, or one of LANE_MARKS): its name and time in the title.
    const eventMark = (e, cls) =>
      h("button", {
        type: "button",
        class: `mark ${cls}`,
        style: { left: pct(ms(e.at)) },
        "aria-label": tr("跳转到 {k} {t}", "Jump to {k} at {t}", { k: kindLabel(e.kind), t: hms(ms(e.at)) }),
        title: `${kindLabel(e.kind)} ${hms(ms(e.at))}`,
        onclick: () => player.seek(ms(e.at)),
      });
    const marks = h(
      "div",
      { class: "lane marks" },
      h("span", { class: "lane-label" }, tr("事件", "Events")),
      h(
        "div",
        { class: "lane-track" },
        // First, so that a flag or an answer's end at the same moment is drawn over it.
        laneEvents.map((e) => eventMark(e, LANE_MARKS[e.kind])),
        (data.flags || []).map((f) => eventMark(f, "flag")),
        (data.answer_boundaries || []).map((b) =>
          h("button", {
            type: "button",
            class: "mark answer",
            style: { left: pct(ms(b.at)) },
            "aria-label": tr("回答结束 {t}", "Answer end {t}", { t: hms(ms(b.at)) }),
            onclick: () => player.seek(ms(b.at)),
          }),
        ),
      ),
    );
    const head = h("div", { class: "playhead" });
    const track = h("div", { class: "timeline-bar", "aria-label": tr("时间轴，点击跳转", "Timeline, click to jump") }, lanes, marks, head);
    track.addEventListener("click", (e) => {
      if (e.target.closest("button")) return;
      const r = track.querySelector(".lane-track").getBoundingClientRect();
      player.seek(start + ((e.clientX - r.left) / r.width) * span);
    });
    return {
      el: track,
      setHead(t) {
        head.style.left = `calc(6rem + (100% - 6rem) * ${((t - start) / span).toFixed(4)})`;
      },
    };
  }

  // --- event list ------------------------------------------------------------------------------
  function renderEvents() {
    const flagged = new Map((data.flags || []).map((f) => [f.seq, f]));
    const events = byTime(data.events).filter((e) => !onlyFlags.checked || flagged.has(e.seq) || e.severity === "violation");
    clear(eventsBox).append(
      h(
        "ol",
        { class: "events", id: "events" },
        events.map((e) => {
          const f = flagged.get(e.seq);
          return h(
            "li",
            { class: `sev-${e.severity}${f ? " flagged" : ""}`, "data-seq": String(e.seq), "data-kind": e.kind },
            h(
              "button",
              { type: "button", class: "jump", onclick: () => player.seek(ms(e.at)), "aria-label": tr("跳转到 {k} {t}", "Jump to {k} at {t}", { k: kindLabel(e.kind), t: hms(ms(e.at)) }) },
              h("time", { datetime: e.at }, hms(ms(e.at))),
              h("span", { class: "kind" }, kindLabel(e.kind)),
              f && f.confidence != null ? h("span", { class: "conf" }, `${tr("置信度", "conf.")} ${Number(f.confidence).toFixed(2)}`) : null,
              f && f.ruling ? h("span", { class: "tag" }, verdictLabel({ ...f.ruling, state: "confirmed" })) : null,
              summary(e, hms),
            ),
          );
        }),
      ),
    );
  }

  // --- panels --------------------------------------------------------------------------------
  function renderPanel() {
    clear(panel);
    verdictBadge.textContent = verdictLabel(data.verdict);
    verdictBadge.className = `tag ${data.verdict ? (data.verdict.violation ? "bad" : "ok") : ""}`;
    const fn = { rulings: rulingsPanel, snapshots: snapshotsPanel, answers: answersPanel, notes: notesPanel, help: helpPanel, log: logPanel, audit: auditPanel }[tab];
    fn(panel);
  }

  async function reload() {
    data = await api.get(`/api/v1/review/attempts/${encodeURIComponent(attemptId)}`);
    renderEvents();
    renderPanel();
  }

  function rulingsPanel(p) {
    const flags = data.flags || [];
    p.append(h("h3", {}, tr("疑似违纪", "Suspected violations"), ` (${flags.length})`));
    if (!flags.length) p.append(h("p", { class: "muted" }, tr("没有疑似违纪记录。", "No suspected violations.")));
    for (const f of flags) p.append(flagCard(f));
    p.append(verdictCard());
  }

  function flagCard(f) {
    const id = `f${f.seq}`;
    const yes = h("input", { type: "radio", name: `${id}-v`, value: "yes", id: `${id}-yes` });
    const no = h("input", { type: "radio", name: `${id}-v`, value: "no", id: `${id}-no`, checked: true });
    const rule = h("input", { id: `${id}-rule`, placeholder: tr("例如：考生违纪处理办法第五条", "e.g. rule 5 of the exam regulations") });
    const reason = h("textarea", { id: `${id}-reason`, rows: 2, required: true });
    const msg = h("p", { class: "error", role: "status" });
    const form = h(
      "form",
      { class: "ruling-form" },
      h("fieldset", {}, h("legend", {}, tr("裁定", "Ruling")), h("label", { class: "check", for: `${id}-no` }, no, tr("不构成违纪", "Not a violation")), h("label", { class: "check", for: `${id}-yes` }, yes, tr("违纪", "Violation"))),
      h("label", { for: `${id}-rule` }, tr("违纪规则", "Rule")),
      rule,
      h("label", { for: `${id}-reason` }, tr("理由", "Reason")),
      reason,
      msg,
      h("button", { type: "submit", class: "primary" }, tr("提交裁定", "Submit ruling")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      msg.textContent = "";
      if (!reason.value.trim()) return void (msg.textContent = tr("请填写理由。", "Please give a reason."));
      if (yes.checked && !rule.value.trim()) return void (msg.textContent = tr("认定违纪时请写明违反的规则。", "Name the rule for a violation."));
      try {
        await api.post(`/api/v1/review/attempts/${encodeURIComponent(attemptId)}/rulings`, {
          event_seq: f.seq,
          violation: yes.checked,
          rule: yes.checked ? rule.value.trim() : null,
          reason: reason.value.trim(),
        });
        await reload();
      } catch (err) {
        msg.textContent = err.message;
      }
    });
    return h(
      "article",
      { class: "flag-card card", "data-seq": String(f.seq), "data-kind": f.kind },
      h(
        "header",
        { class: "row spread" },
        h("strong", {}, kindLabel(f.kind)),
        h("button", { type: "button", class: "link", onclick: () => player.seek(ms(f.at)) }, hms(ms(f.at))),
      ),
      f.confidence != null ? h("p", { class: "muted" }, tr("置信度 {c}", "Confidence {c}", { c: Number(f.confidence).toFixed(2) })) : null,
      f.snapshot_url ? snapshotImg(f.snapshot_url, kindLabel(f.kind)) : null,
      f.ruling
        ? h("p", { class: `note ${f.ruling.violation ? "error" : "ok"}` }, verdictLabel({ ...f.ruling, state: "confirmed" }), " — ", f.ruling.reason || "", h("br"), h("small", {}, `${f.ruling.by || ""} ${dateTime(f.ruling.at)}`))
        : null,
      data.published ? null : h("details", { open: !f.ruling }, h("summary", {}, f.ruling ? tr("重新裁定", "Rule again") : tr("裁定此项", "Rule on this")), form),
    );
  }

  function verdictCard() {
    const v = data.verdict;
    const pending = data.pending_verdict;
    const card = h("section", { class: "verdict card", id: "verdict" }, h("h3", {}, tr("最终裁定", "Final ruling")));
    if (v) {
      card.append(
        h("p", { class: `note ${v.violation ? "error" : "ok"}` }, verdictLabel(v), v.reason ? ` — ${v.reason}` : ""),
        h("p", { class: "muted" }, tr("提出：{by} {at}", "Proposed by {by} at {at}", { by: v.by || v.proposed_by || "", at: dateTime(v.at || v.proposed_at) })),
      );
      if (v.state === "confirmed" && v.violation) {
        card.append(h("p", { class: "muted" }, tr("复核确认：{by} {at}", "Confirmed by {by} at {at}", { by: v.confirmed_by || "", at: dateTime(v.confirmed_at) })));
      }
      if (v.state === "proposed" && !data.published) card.append(confirmBox(v));
    }
    if (pending) {
      // A change to a confirmed ruling: in force only once a second reviewer confirms it.
      card.append(
        h(
          "div",
          { class: "pending-verdict", id: "pending-verdict" },
          h("p", { class: "note warn" }, tr("待复核的更改：", "Change awaiting confirmation: "), verdictLabel({ ...pending, state: "confirmed" }), pending.reason ? ` — ${pending.reason}` : ""),
          h("p", { class: "muted" }, tr("提出：{by} {at}", "Proposed by {by} at {at}", { by: pending.proposed_by || "", at: dateTime(pending.proposed_at) })),
          data.published ? null : confirmBox(pending),
        ),
      );
    }
    if (data.published) {
      card.append(h("p", { class: "note warn", id: "verdict-frozen" }, tr("成绩已发布，裁定已冻结。如需更改，请管理员在考试管理中重新开放审核。", "Scores are published and rulings frozen. An administrator must re-open the review to change them.")));
    } else if (!v || v.state === "confirmed" || !v.violation) {
      card.append(verdictForm(!!v));
    }
    return card;
  }

  // Confirming a proposal: a violation, or any change to a confirmed ruling, needs a second
  // reviewer; its proposer only sees that it is waiting.
  function confirmBox(v) {
    const mine = (v.by || v.proposed_by) === session.me.username;
    if (mine) {
      return h("p", { class: "note warn" }, v.violation && !v.replaces
        ? tr("违纪认定需要另一名评审员复核确认。", "A second reviewer must confirm a violation.")
        : tr("更改已确认的裁定需要另一名评审员复核确认。", "A second reviewer must confirm a change to a confirmed ruling."));
    }
    const reason = h("textarea", { id: `confirm-reason-${v.id}`, rows: 2 });
    const msg = h("p", { class: "error", role: "status" });
    const label = v.violation ? tr("确认违纪", "Confirm violation") : tr("确认更改", "Confirm change");
    const form = h(
      "form",
      { class: "confirm-form" },
      h("label", { for: `confirm-reason-${v.id}` }, tr("复核理由", "Reason for confirming")),
      reason,
      msg,
      h("button", { type: "submit", class: "danger" }, label),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!reason.value.trim()) return void (msg.textContent = tr("请填写复核理由。", "Please give a reason."));
      try {
        await api.post(`/api/v1/review/verdicts/${encodeURIComponent(v.id)}/confirm`, { reason: reason.value.trim() });
        await reload();
      } catch (err) {
        msg.textContent = err.code === "second_reviewer_required" ? tr("需由另一名评审员确认。", "Another reviewer must confirm.") : err.message;
      }
    });
    return form;
  }

  function verdictForm(again) {
    const yes = h("input", { type: "radio", name: "verdict-v", value: "yes", id: "verdict-yes" });
    const no = h("input", { type: "radio", name: "verdict-v", value: "no", id: "verdict-no", checked: true });
    const rule = h("input", { id: "verdict-rule" });
    const reason = h("textarea", { id: "verdict-reason", rows: 2 });
    const msg = h("p", { class: "error", role: "status" });
    const form = h(
      "form",
      { class: "verdict-form" },
      h("fieldset", {}, h("legend", {}, tr("考生最终裁定", "Candidate's final ruling")), h("label", { class: "check", for: "verdict-no" }, no, tr("不违纪", "Not a violation")), h("label", { class: "check", for: "verdict-yes" }, yes, tr("违纪", "Violation"))),
      h("label", { for: "verdict-rule" }, tr("违纪规则", "Rule")),
      rule,
      h("label", { for: "verdict-reason" }, tr("裁定理由", "Reason")),
      reason,
      msg,
      h("button", { type: "submit", class: "primary" }, tr("提交最终裁定", "Submit final ruling")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      msg.textContent = "";
      if (!reason.value.trim()) return void (msg.textContent = tr("请填写裁定理由。", "Please give a reason."));
      if (yes.checked && !rule.value.trim()) return void (msg.textContent = tr("认定违纪时请写明违反的规则。", "Name the rule for a violation."));
      const ok = await confirmDialog(
        yes.checked
          ? tr("认定该考生违纪（{r}）？需另一名评审员复核确认后生效。", "Rule a violation ({r})? Another reviewer must confirm it.", { r: rule.value.trim() })
          : tr("认定该考生不违纪？", "Rule that there was no violation?"),
      );
      if (!ok) return;
      try {
        await api.post(`/api/v1/review/attempts/${encodeURIComponent(attemptId)}/verdict`, {
          violation: yes.checked,
          rule: yes.checked ? rule.value.trim() : null,
          reason: reason.value.trim(),
        });
        await reload();
      } catch (err) {
        msg.textContent = err.message;
      }
    });
    return again ? h("details", {}, h("summary", {}, tr("修改最终裁定", "Change the final ruling")), form) : form;
  }

  // A snapshot in a frame of fixed shape: an empty grey frame until its image has loaded (not
  // a broken-image icon), the whole image once it has (a 16:9 screen letterboxed, not cropped),
  // a line of text if it cannot be loaded.
  function snapshotImg(url, alt) {
    const img = h("img", { alt, class: "snap" });
    const frame = h("span", { class: "snap-frame", "data-state": "waiting" }, img);
    const failed = () => {
      frame.dataset.state = "failed";
      img.remove();
      frame.append(h("span", { class: "snap-failed" }, tr("图片无法加载", "Image could not be loaded")));
    };
    img.addEventListener("load", () => (frame.dataset.state = "loaded"));
    img.addEventListener("error", failed);
    // Fetch only when scrolled into view: a long exam has hundreds of snapshots.
    const io = new IntersectionObserver((entries) => {
      if (entries.some((x) => x.isIntersecting)) {
        io.disconnect();
        session.blobUrl(url).then((u) => (img.src = u)).catch(failed);
      }
    });
    io.observe(frame);
    return frame;
  }

  function snapshotsPanel(p) {
    const snaps = data.snapshots || [];
    const kindSel = h(
      "select",
      { id: "snap-kind", onchange: () => draw() },
      h("option", { value: "" }, tr("全部画面", "All streams")),
      streams.map((k) => h("option", { value: k }, streamLabel(k))),
    );
    const grid = h("div", { class: "gallery" });
    const draw = () =>
      clear(grid).append(
        ...snaps
          .filter((s) => !kindSel.value || s.kind === kindSel.value)
          .map((s) =>
            h(
              "figure",
              { "data-kind": s.kind },
              h("button", { type: "button", class: "snap-btn", onclick: () => player.seek(ms(s.at)), "aria-label": tr("{k} {t}，跳转", "{k} at {t}, jump", { k: streamLabel(s.kind), t: hms(ms(s.at)) }) }, snapshotImg(s.url, streamLabel(s.kind))),
              h("figcaption", {}, `${streamLabel(s.kind)} ${hms(ms(s.at))}`),
            ),
          ),
      );
    p.append(h("h3", {}, tr("截图", "Snapshots"), ` (${snaps.length})`), h("label", { for: "snap-kind" }, tr("画面", "Stream")), kindSel, grid);
    draw();
  }

  function answersPanel(p) {
    const s = data.schedule || {};
    // Before the release the start is still ahead (the server says so; this browser's clock may
    // be off): 「（尚未到）」 beside it.
    const ahead = s.questions_released === false;
    const row = (label, iso, future = false) => [
      h("dt", {}, label),
      h(
        "dd",
        {},
        iso ? h("button", { type: "button", class: "link", onclick: () => player.seek(ms(iso)) }, dateTime(iso)) : "—",
        iso && future ? h("span", { class: "muted not-yet" }, tr("（尚未到）", " (not yet)")) : null,
      ),
    ];
    p.append(
      h("h3", {}, tr("答题情况", "Answers")),
      h(
        "dl",
        { class: "facts wide" },
        row(tr("开考时间", "Exam start"), s.starts_at, ahead),
        row(tr("进入考试", "Entered"), s.entered_at),
        row(tr("试题发放", "Questions released"), s.questions_at, ahead),
        row(tr("截止时间", "Deadline"), s.deadline),
        row(tr("交卷时间", "Finished"), s.finished_at),
      ),
      h("h4", {}, tr("试题", "Questions")),
      h(
        "ol",
        { class: "questions" },
        (data.questions || []).map((q) => h("li", {}, q.text)),
      ),
      s.questions_released === false ? h("p", { class: "muted" }, tr("开考前不显示试题。", "Questions are not shown before the exam starts.")) : "", // p.append prints null
      h("h4", {}, tr("回答结束标记（「该题回答完毕」）", "Answer boundaries (“该题回答完毕”)")),
      (data.answer_boundaries || []).length
        ? h(
            "ol",
            { class: "boundaries" },
            data.answer_boundaries.map((b, i) =>
              h(
                "li",
                {},
                h("button", { type: "button", class: "link", onclick: () => player.seek(ms(b.at)) }, `${boundaryLabel(b, i)} · ${hms(ms(b.at))}`),
                h("span", { class: "muted" }, ` (${codeLabel((b.data || {}).method || b.source || "audio")})`),
              ),
            ),
          )
        : h("p", { class: "muted", id: "no-markers" }, noMarkersText()),
    );
  }

  function notesPanel(p) {
    const notes = data.notes || [];
    const warnings = data.warnings || [];
    const item = (n) => h("li", {}, h("button", { type: "button", class: "link", onclick: () => player.seek(ms(n.at)) }, hms(ms(n.at))), " ", n.author ? h("strong", {}, `${n.author}：`) : null, n.text);
    p.append(
      h("h3", {}, tr("监考员记录", "Proctor notes"), ` (${notes.length})`),
      notes.length ? h("ul", { class: "notes" }, notes.map(item)) : h("p", { class: "muted" }, tr("无", "None")),
      h("h3", {}, tr("警告", "Warnings"), ` (${warnings.length})`),
      warnings.length ? h("ul", { class: "notes warnings" }, warnings.map(item)) : h("p", { class: "muted" }, tr("无", "None")),
    );
  }

  function helpPanel(p) {
    const msgs = data.help || [];
    p.append(
      h("h3", {}, tr("求助对话", "Help conversation")),
      msgs.length
        ? h(
            "ul",
            { class: "messages" },
            msgs.map((m) =>
              h(
                "li",
                { class: `from-${m.from}` },
                h("span", { class: "who" }, m.from === "staff" ? tr("工作人员", "Staff") : tr("考生", "Candidate")),
                h("time", {}, hms(ms(m.at))),
                h("p", {}, m.text),
              ),
            ),
          )
        : h("p", { class: "muted" }, tr("没有求助。", "No help requests.")),
    );
  }

  function logPanel(p) {
    let day = null;
    p.append(
      h("h3", {}, tr("系统日志", "System log"), ` (${(data.events || []).length})`),
      h(
        "table",
        { class: "table log" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "#"),
            h("th", { scope: "col" }, tr("时间", "Time")),
            h("th", { scope: "col" }, tr("事件", "Event")),
            h("th", { scope: "col" }, tr("级别", "Severity")),
            h("th", { scope: "col", title: tr("哈希值（hash）：日志逐条链接的校验值，用于发现记录是否被改动", "Each entry's hash in the log's hash chain: shows whether an entry was altered") }, tr("校验值", "Hash")),
          ),
        ),
        // Each entry's data on its own full-width row under it: in the panel's width a data
        // column beside four others was a strip a few characters wide. The date heads each day's
        // entries instead of standing in every row, and the hash shows its first 8 digits (whole
        // in its title): so every event name keeps to one line at 1280 px.
        byTime(data.events).map((e) => {
          const text = describeData(e.data || {}, tz(), { kind: e.kind });
          const date = dateTime(e.at).split(" ")[0];
          const head = date !== day ? h("tbody", { class: "day" }, h("tr", {}, h("th", { colspan: "5", scope: "rowgroup" }, date))) : null;
          day = date;
          return [
            head,
            h(
              "tbody",
              { class: `sev-${e.severity}` },
              h(
                "tr",
                {},
                h("td", {}, String(e.seq)),
                h("td", { class: "at", title: dateTime(e.at) }, hms(e.at)),
                h("td", { class: "kind" }, kindLabel(e.kind)),
                h("td", { class: "sev" }, severityLabel(e.severity)),
                h("td", { class: "hash", title: e.hash }, (e.hash || "").slice(0, 8)),
              ),
              text ? h("tr", { class: "data-row" }, h("td", { class: "data", colspan: "5" }, text)) : null,
            ),
          ];
        }),
      ),
    );
  }

  async function auditPanel(p) {
    p.append(h("h3", {}, tr("访问记录", "Access log")));
    try {
      const { entries } = await api.get(`/api/v1/review/audit?attempt_id=${encodeURIComponent(attemptId)}`);
      p.append(
        h(
          "table",
          { class: "table" },
          h("thead", {}, h("tr", {}, [tr("时间", "Time"), tr("人员", "Staff"), tr("操作", "Action"), tr("详情", "Detail")].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            entries.map((a) => h("tr", { "data-action": a.action }, h("td", {}, dateTime(a.at)), h("td", {}, a.staff), h("td", {}, actionLabel(a.action)), h("td", { class: "data" }, auditDetail(a, tz())))),
          ),
        ),
      );
    } catch (err) {
      p.append(h("p", { class: "error" }, err.message));
    }
  }

  renderTabs();
  renderEvents();
  renderPanel();
  onTime(player.t);
  // Space toggles play/pause when not typing.
  const onKey = (e) => {
    if (e.key === " " && !["INPUT", "TEXTAREA", "SELECT", "BUTTON"].includes(document.activeElement.tagName)) {
      e.preventDefault();
      player.toggle();
    }
  };
  document.addEventListener("keydown", onKey);
  return () => {
    document.removeEventListener("keydown", onKey);
    player.destroy();
    delete window.__review;
  };
}

/** 第 N 题结束; a marker heard after the last question ended (said again, or in a reply to a
 * proctor) is not an answer to a question that does not exist: the reviewer sees it as extra. */
function boundaryLabel(b, i) {
  const d = b.data || {};
  if (d.extra) return tr("多余的结束标记（试题已答完）", "Extra boundary (after the last question)");
  return tr("第 {n} 题结束", "End of answer {n}", { n: d.question || i + 1 });
}

/** One short line for an event's data, in words (hms: a time of day in the exam's zone). */
function summary(e, hms) {
  const d = e.data || {};
  const line = (text) => (text ? h("span", { class: "muted" }, String(text)) : null);
  if (e.kind === "finished" && d.before_start) return line(tr("开考前放弃考试", "gave up before the start"));
  if (e.kind === "face_consent_refused") return line(tr("改为人工核验", "a manual check instead"));
  if (e.kind === "recording_closed") {
    const left = (d.left_out || []).length;
    return line(tr("系统保存了已收到的录像。{k}：收到 {r} 段，可回放的前 {j} 段{x}", "The server kept what arrived. {k}: {r} chunks arrived, the first {j} playable{x}", {
      k: streamLabel(d.kind), r: d.received, j: d.joined,
      x: left ? tr("，缺口之后的 {n} 段在证据包中", "; {n} after the gap are in the evidence package", { n: left }) : "",
    }));
  }
  // Which of the three streams started or finished uploading.
  if ((e.kind === "recording_started" || e.kind === "recording_finalized") && d.kind) return line(streamLabel(d.kind));
  // The server noticed the desk gone quiet, then heard from it again: for how long.
  if (e.kind === "desk_silent" && d.seconds != null) {
    const last = d.last_seen_at ? hms(Date.parse(d.last_seen_at)) : "";
    return line(tr("{d}未收到考试电脑的消息{t}", "Nothing from the exam computer for {d}{t}", {
      d: duration(d.seconds * 1000),
      t: last ? tr("（最后联系 {t}）", " (last heard {t})", { t: last }) : "",
    }));
  }
  if (e.kind === "desk_back" && d.duration_ms != null) return line(tr("失去联系 {d}", "Out of contact for {d}", { d: duration(d.duration_ms) }));
  if (e.kind === "lot_drawn" && d.number != null) return line(tr("{n} 号", "No. {n}", { n: d.number }));
  if (e.kind === "flag_ended" && d.flag) return line(kindLabel(d.flag));
  if (e.kind === "phone_state" && d.state) return line(codeLabel(d.state));
  if (e.kind === "login_failed" && d.code) return line(dataValue("code", d.code));
  if (e.kind === "attachment_read" && d.title) return line(d.title);
  if (e.kind === "extra_time" && d.minutes != null) return line(tr("延长 {m} 分钟", "{m} min extra", { m: d.minutes }));
  if (e.kind === "room_moved" && d.to) return line(`${d.from || ""} → ${d.to}`);
  // Codes (交卷 reason "candidate", a stream kind …) in words; free text as written.
  const code = d.reason || (e.kind === "answer_end" ? d.method : null);
  const text = d.text || (code ? dataValue(d.reason ? "reason" : "method", code) : "") || (typeof d.detail === "string" ? d.detail : "") || (d.distance != null ? `${currentLang() === "en" ? "distance" : "距离"} ${Number(d.distance).toFixed(2)}` : "");
  // How long the candidate was away (回到考试页面, 网络恢复 …; the phone's gaps).
  const lasted = d.duration_ms != null ? tr("历时 {d}", "lasted {d}", { d: duration(d.duration_ms) }) : "";
  return line([text, lasted].filter(Boolean).join(" · "));
}
