// One master clock in server time drives every <video> of a candidate's recordings.
//
// A stream (webcam, screen, evidence) may have several recordings after reconnects; each is
// placed on the clock at its server start time (the arrival of chunk 0). At any moment a
// stream shows the recording that covers it, or "无录像" in a gap. Seeking, play/pause and
// speed apply to all streams at once; while playing, a video that drifts from the clock is
// nudged with its playback rate, or re-seeked when it is far off (after buffering).

import { h } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";

const HARD_DRIFT_S = 0.5; // further off than this: seek
const SOFT_DRIFT_S = 0.08; // between this and HARD: adjust the rate a little

export class SyncPlayer {
  /**
   * streams: [{kind, label, recordings: [{id, started_at, duration_s, ended_at, media_url}]}]
   * resolveUrl(media_url) → Promise<string> (a URL a <video> can load)
   */
  constructor({ streams, resolveUrl, onTime = () => {}, start = null, end = null }) {
    this.onTime = onTime;
    this.rate = 1;
    this.playing = false;
    this.streams = streams.map((s) => ({
      kind: s.kind,
      label: s.label,
      active: null,
      cell: null,
      gap: null,
      recordings: s.recordings
        .map((r) => ({ ...r, start: Date.parse(r.started_at), video: null, pendingSeek: null, loadedDuration: null }))
        .filter((r) => !Number.isNaN(r.start))
        .sort((a, b) => a.start - b.start),
    }));
    const all = this.streams.flatMap((s) => s.recordings);
    this.start = start ?? (all.length ? Math.min(...all.map((r) => r.start)) : Date.now());
    this.end = end ?? (all.length ? Math.max(...all.map((r) => this.endOf(r))) : this.start);
    this.t = this.initialTime();
    this.element = this.render(resolveUrl);
    this.lastTick = performance.now();
    // setInterval rather than requestAnimationFrame: it keeps running in a background tab
    // and headless, where the reviewer may leave the page playing.
    this.timer = setInterval(() => this.tick(), 100);
    this.apply(true, true);
  }

  /** Where the page opens: the first moment every stream that has a recording shows one
   * (streams start a second or two apart), else the first recording's start — never a
   * stretch before any recording (the timeline may begin with an earlier flag). */
  initialTime() {
    const firsts = this.streams.filter((s) => s.recordings.length).map((s) => s.recordings[0]);
    if (!firsts.length) return this.start;
    const latest = Math.max(...firsts.map((r) => r.start));
    const all = this.streams.filter((s) => s.recordings.length).every((s) => s.recordings.some((r) => latest >= r.start && latest < this.endOf(r)));
    const t = all ? latest : Math.min(...firsts.map((r) => r.start));
    return Math.min(Math.max(t, this.start), this.end);
  }

  /** The end of a recording in server ms: its known duration, or its stated end. */
  endOf(r) {
    const d = r.loadedDuration ?? r.duration_s;
    if (d != null && Number.isFinite(d)) return r.start + d * 1000;
    if (r.ended_at) return Date.parse(r.ended_at);
    return r.start;
  }

  render(resolveUrl) {
    const grid = h("div", { class: this.streams.length === 1 ? "players single" : "players" });
    for (const s of this.streams) {
      s.gap = h("div", { class: "gap", role: "status" }, tr("无录像", "No recording"));
      // Recordings arrive whole (see resolveUrl), which takes a while for a long exam.
      s.loading = h("div", { class: "loading", hidden: true }, tr("录像加载中…", "Loading the recording…"));
      const stack = h("div", { class: "stack" }, s.gap, s.loading);
      for (const r of s.recordings) {
        // Still being recorded (the exam is on): nothing to play until it is finalized, and
        // asking would only get a 409.
        if (r.state === "open") {
          r.failed = true;
          // Closed by the server at upload close without its first chunk: nothing playable.
          if (r.closed_by === "server") r.unplayable = true;
          else r.open = true;
          continue;
        }
        const v = h("video", {
          preload: "auto",
          muted: s.kind !== "webcam",
          playsInline: true,
          "data-recording": r.id,
          "data-kind": s.kind,
          "aria-label": `${s.label} ${r.id}`,
          hidden: true,
        });
        v.muted = s.kind !== "webcam";
        v.addEventListener("loadedmetadata", () => {
          if (Number.isFinite(v.duration) && v.duration > 0) r.loadedDuration = v.duration;
          this.end = Math.max(this.end, this.endOf(r));
          if (r.pendingSeek !== null) {
            v.currentTime = r.pendingSeek;
            r.pendingSeek = null;
          }
          this.apply(true);
        });
        v.addEventListener("error", () => {
          r.failed = true;
          this.apply(true);
        });
        r.video = v;
        stack.append(v);
        resolveUrl(r.media_url)
          .then((url) => {
            v.src = url;
          })
          .catch(() => {
            r.failed = true;
            this.apply(true);
          });
      }
      s.cell = h("figure", { class: "player", "data-kind": s.kind }, stack, h("figcaption", {}, s.label));
      grid.append(s.cell);
    }
    return grid;
  }

  covering(s, t) {
    return s.recordings.find((r) => !r.failed && t >= r.start && t < this.endOf(r)) || null;
  }

  /** Show, position and run each stream's video for the clock's time. force: seek exactly;
   * silent: do not report the time (the page is still being built). */
  apply(force = false, silent = false) {
    if (this.destroyed) return;
    for (const s of this.streams) {
      const r = this.covering(s, this.t);
      if (s.active && s.active !== r) {
        s.active.video.pause();
        s.active.video.hidden = true;
      }
      s.active = r;
      s.gap.hidden = !!r;
      if (!r) {
        // Before the stream's first recording it has not started yet; later it is a real gap.
        const first = s.recordings.find((x) => !x.failed);
        const open = s.recordings.some((x) => x.open && this.t >= x.start);
        const unplayable = s.recordings.some((x) => x.unplayable && this.t >= x.start && this.t < this.endOf(x));
        s.gap.textContent = open
          ? tr("录制中，结束并上传完成后可回放", "Still recording: playable once it ends and is uploaded")
          : unplayable
            ? tr("考生端中断，未收到这段录像的开头，无法回放（已收到的分段在证据包中）", "The candidate's browser was lost before this recording's start arrived: not playable (its chunks are in the evidence package)")
            : first && this.t < first.start
            ? tr("录像尚未开始", "Not recording yet")
            : tr("无录像", "No recording");
      }
      s.cell.classList.toggle("in-gap", !r);
      s.loading.hidden = !s.recordings.some((x) => !x.failed && x.video && x.video.readyState < 1);
      if (!r) continue;
      const v = r.video;
      v.hidden = false;
      const want = (this.t - r.start) / 1000;
      if (v.readyState < 1) {
        r.pendingSeek = want;
        continue;
      }
      const drift = v.currentTime - want;
      if (force || Math.abs(drift) > HARD_DRIFT_S) {
        v.currentTime = want;
        v.playbackRate = this.rate;
      } else if (this.playing && Math.abs(drift) > SOFT_DRIFT_S) {
        v.playbackRate = this.rate * (drift > 0 ? 0.9 : 1.1);
      } else {
        v.playbackRate = this.rate;
      }
      if (this.playing && v.paused) v.play().catch(() => {});
      if (!this.playing && !v.paused) v.pause();
    }
    if (!silent) this.onTime(this.t);
  }

  tick() {
    const now = performance.now();
    const dt = now - this.lastTick;
    this.lastTick = now;
    if (!this.playing) return;
    this.t += dt * this.rate;
    if (this.t >= this.end) {
      this.t = this.end;
      this.pause();
      return;
    }
    this.apply(false);
  }

  play() {
    if (this.t >= this.end) this.t = this.start;
    this.playing = true;
    this.lastTick = performance.now();
    this.apply(true);
  }

  pause() {
    this.playing = false;
    for (const s of this.streams) if (s.active) s.active.video.pause();
    this.apply(true);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  setRate(rate) {
    this.rate = rate;
    this.apply(false);
  }

  /** Jump every stream to one server time (ms). */
  seek(t) {
    this.t = Math.min(Math.max(t, this.start), this.end);
    this.lastTick = performance.now();
    this.apply(true);
  }

  /** For tests and the page: where each stream stands. */
  state() {
    return this.streams.map((s) => ({
      kind: s.kind,
      recording_id: s.active ? s.active.id : null,
      started_at: s.active ? s.active.started_at : null,
      current_time: s.active && s.active.video ? s.active.video.currentTime : null,
      ready: s.active && s.active.video ? s.active.video.readyState : 0,
      gap: !s.active,
    }));
  }

  /** Recording spans per stream, for drawing the timeline: [{kind, spans: [[start, end]]}]. */
  spans() {
    return this.streams.map((s) => ({ kind: s.kind, label: s.label, spans: s.recordings.map((r) => [r.start, this.endOf(r)]) }));
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this.timer);
    for (const s of this.streams)
      for (const r of s.recordings) {
        if (r.video) {
          r.video.pause();
          r.video.removeAttribute("src");
          r.video.load();
        }
      }
  }
}
