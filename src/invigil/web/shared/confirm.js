// A modal confirmation with 确定 / 取消 (the contract's words for confirmations), built from
// the DOM so server text cannot inject markup. Resolves true on 确定, false on 取消 or Escape.

import { h } from "./dom.js";
import { tr } from "./i18n.js";

export function confirmDialog(text, { ok, cancel, danger = false } = {}) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const close = (value) => {
      backdrop.remove();
      document.removeEventListener("keydown", onKey);
      if (previous && previous.focus) previous.focus();
      resolve(value);
    };
    const onKey = (e) => {
      if (e.key === "Escape") close(false);
    };
    const okBtn = h("button", { type: "button", class: danger ? "danger" : "primary", onclick: () => close(true) }, ok || tr("确定", "OK"));
    const backdrop = h(
      "div",
      { class: "confirm-backdrop" },
      h(
        "div",
        { class: "confirm-dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "confirm-text" },
        h("p", { id: "confirm-text" }, text),
        h("div", { class: "confirm-actions" }, h("button", { type: "button", onclick: () => close(false) }, cancel || tr("取消", "Cancel")), okBtn),
      ),
    );
    // Inline style: works on any page without its stylesheet knowing about the dialog.
    Object.assign(backdrop.style, {
      position: "fixed", inset: "0", background: "rgba(15,23,42,0.5)", display: "grid", placeItems: "center", zIndex: "50",
    });
    const card = backdrop.firstChild;
    Object.assign(card.style, {
      background: "#fff", borderRadius: "10px", padding: "1.2rem 1.4rem", maxWidth: "30rem", width: "92vw", boxShadow: "0 8px 30px rgba(0,0,0,0.25)",
    });
    Object.assign(card.lastChild.style, { display: "flex", gap: "0.75rem", justifyContent: "flex-end", marginTop: "1rem" });
    document.addEventListener("keydown", onKey);
    document.body.append(backdrop);
    okBtn.focus();
  });
}
