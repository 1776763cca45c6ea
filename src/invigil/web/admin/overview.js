// 考务总览: a placeholder until its module is built (see app.js for the tab interface).

import { h } from "../shared/dom.js";

export async function render(root, ctx) {
  root.append(h("h2", {}, ctx.tr("考务总览", "Overview")), h("p", { class: "muted" }, ctx.tr("尚未实现。", "Not built yet.")));
}
