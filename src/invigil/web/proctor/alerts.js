// Alerts: every suspected-violation event is an element with role="alert" naming the candidate,
// highlighted and with a short beep, until this staff member acknowledges it (recorded on the
// server, so a reloaded console shows only what is still open).

import { h, clear } from "../shared/dom.js";
import { tr } from "../shared/i18n.js";
import { kindName } from "./labels.js";
import { store, candidate, clock, isAlert, emit } from "./store.js";

let audio = null;
let filter = "";
let nodes = new Map(); // "attempt:seq:name" -> element, so a re-render does not flash them again

/** Create the audio context inside a user gesture (login click), so beeps are allowed later. */
export function unlockAudio() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    // Refused without a user gesture (autoplay policy): the alerts still show, silently.
    if (audio.state === "suspended") audio.resume().catch(() => {});
  } catch {
    audio = null;
  }
}

let lastBeep = 0;

export function beep() {
  // A console restored from a stored token had no login click: try anyway (it may be allowed).
  if (!audio) unlockAudio();
  if (!audio || performance.now() - lastBeep < 400) return;
  lastBeep = performance.now();
  try {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.3, audio.currentTime + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.3);
  } catch {
    /* no sound: the highlight still shows */
  }
}

/** Forget the built alert elements (the language changed: build them again). */
export function resetAlertNodes() {
  nodes = new Map();
}

export function allAlerts() {
  const out = [];
  for (const [aid, evs] of store.events) {
    for (const ev of evs) if (isAlert(ev)) out.push({ aid, ev, acked: store.acked.has(`${aid}:${ev.seq}`) });
  }
  out.sort((a, b) => Date.parse(b.ev.at) - Date.parse(a.ev.at) || b.ev.seq - a.ev.seq);
  return out;
}

async function acknowledge(aid, seq) {
  store.acked.add(`${aid}:${seq}`);
  emit("alerts");
  try {
    await store.api.post("/api/v1/staff/alerts/ack", { attempt_id: aid, seq });
  } catch (err) {
    store.acked.delete(`${aid}:${seq}`);
    emit("alerts");
    window.alert(tr("确认失败：{m}", "Acknowledging failed: {m}", { m: err.message }));
  }
}

export function renderAlerts({ list, ackedList, count, filterSelect, onOpen }) {
  const alerts = allAlerts();
  const open = alerts.filter((a) => !a.acked);
  count.textContent = String(open.length);
  count.classList.toggle("hot", open.length > 0);

  const kinds = [...new Set(alerts.map((a) => a.ev.kind))].sort();
  const have = [...filterSelect.options].map((o) => o.value);
  const allText = tr("全部", "All");
  if (kinds.some((k) => !have.includes(k)) || filterSelect.options[0]?.textContent !== allText) {
    const current = filterSelect.value;
    clear(filterSelect).append(
      h("option", { value: "" }, allText),
      ...kinds.map((k) => h("option", { value: k }, kindName(k))),
    );
    filterSelect.value = current;
  }
  filter = filterSelect.value;

  const shown = open.filter((a) => !filter || a.ev.kind === filter);
  const keep = new Map();
  list.replaceChildren(
    ...shown.map(({ aid, ev }) => {
      const c = candidate(aid);
      const key = `${aid}:${ev.seq}:${c.name}`;
      const old = nodes.get(key);
      if (old) {
        keep.set(key, old);
        return old;
      }
      const node = h(
        "div",
        { class: "alert", role: "alert", "data-attempt": aid, "data-seq": String(ev.seq), "data-kind": ev.kind },
        h(
          "button",
          { type: "button", class: "alert-body", title: tr("查看时间线", "Open the timeline"), onclick: () => onOpen(aid, ev.seq) },
          // Name and ticket apart, so that a long name gives way and the ticket never does.
          h("strong", { class: "who" }, h("span", { class: "name" }, c.name), h("span", { class: "ticket" }, `（${c.ticket}）`)),
          h("span", { class: "kind" }, kindName(ev.kind)),
          h("time", { datetime: ev.at }, clock(ev.at)),
        ),
        h("button", { type: "button", class: "ack", onclick: () => acknowledge(aid, ev.seq) }, tr("确认", "确认 OK")),
      );
      keep.set(key, node);
      return node;
    }),
  );
  nodes = keep;
  if (!shown.length) list.append(h("p", { class: "muted" }, open.length ? tr("该类型暂无提醒", "No alerts of this kind") : tr("暂无未确认的提醒", "No open alerts")));
  ackedList.replaceChildren(
    ...alerts
      .filter((a) => a.acked)
      .slice(0, 100)
      .map(({ aid, ev }) => {
        const c = candidate(aid);
        return h(
          "li",
          null,
          h("button", { type: "button", class: "link", onclick: () => onOpen(aid, ev.seq) }, `${clock(ev.at)} ${c.name} · ${kindName(ev.kind)}`),
        );
      }),
  );
}
