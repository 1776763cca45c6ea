// The phone's picture on the desk: once the phone has swept the room and is being placed, its
// newest snapshot appears here so the candidate can check that it shows them, the desk and the
// screen, and answer 机位合适 or 重新摆放. The answer goes to the event log and back to the phone.

import { h, clear } from "../shared/dom.js";
import { tr as L } from "../shared/i18n.js";

const SHOWN_STATES = new Set(["placing", "recording"]);

/** A panel for the binding screen; call update(evidence) whenever the state is refreshed.
 * `at` formats a server time for the candidate. */
export function placementPanel(api, at) {
  const img = h("img", { id: "phone-picture", alt: L("手机拍到的画面", "What the phone sees") });
  const caption = h("p", { class: "hint", id: "phone-picture-at" });
  const answer = h("p", { id: "placement-state", role: "status" });
  const msg = h("p", { class: "error", role: "alert" });
  let shownAt = null;
  let objectUrl = null;

  async function send(ok, btn) {
    btn.disabled = true;
    msg.textContent = "";
    try {
      const r = await api.post("/api/v1/candidate/evidence/placement", { ok });
      showAnswer(r);
    } catch (err) {
      msg.textContent = err.message || String(err);
    } finally {
      btn.disabled = false;
    }
  }

  const yes = h("button", { type: "button", class: "primary", id: "placement-ok", onclick: () => send(true, yes) }, L("机位合适", "Placement is right"));
  const no = h("button", { type: "button", class: "secondary", id: "placement-adjust", onclick: () => send(false, no) }, L("重新摆放", "Place it again"));
  const panel = h("div", { class: "placement", id: "placement", hidden: true },
    h("h2", null, L("确认手机机位", "Check the phone's placement")),
    h("p", { class: "hint" }, L("请确认画面中能同时看到：您本人、桌面和电脑屏幕。", "The picture must show you, the desk and the computer screen.")),
    img, caption,
    h("div", { class: "actions" }, yes, no),
    answer, msg);

  function showAnswer(p) {
    if (!p) {
      answer.textContent = "";
      return;
    }
    answer.className = p.state === "confirmed" ? "note ok" : "note warn";
    answer.textContent = p.state === "confirmed"
      ? L("您已确认机位（{t}）。请保持手机不动。", "You confirmed the placement ({t}). Keep the phone still.", { t: at(p.at) })
      : L("您要求重新摆放手机；手机上会显示提示，摆好后请再次确认。", "You asked to place the phone again; check again once it is placed.");
  }

  async function update(ev) {
    const show = ev && SHOWN_STATES.has(ev.status) && ev.snapshot_at;
    panel.hidden = !show;
    if (!show) return;
    showAnswer(ev.placement);
    if (ev.snapshot_at === shownAt) return;
    try {
      const res = await api.request("GET", "/api/v1/candidate/evidence/snapshot", { raw: true });
      const blob = await res.blob();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(blob);
      img.src = objectUrl;
      shownAt = ev.snapshot_at;
      clear(caption).append(L("手机画面，拍摄于 {t}", "Phone picture taken at {t}", { t: at(shownAt) }));
    } catch {
      /* the next refresh tries again */
    }
  }

  return { el: panel, update };
}
