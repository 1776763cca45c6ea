// 4 抽签: the lot number in the candidate's room.

import { clear, h } from "../shared/dom.js";
import { refreshState, route } from "./session.js";
import { rerender, stepTitle } from "./shell.js";
import { L, S, VIEWS, api, at, button, card, note } from "./state.js";

// 4 抽签 ------------------------------------------------------------------------------------------

VIEWS.lot = () => {
  const st = S.state;
  const msg = h("div");
  const number = h("div", { class: "lot-number", id: "lot-number", "aria-live": "polite" }, st.lot === null ? "?" : String(st.lot));
  const draw = button(L("抽签", "Draw"), async () => {
    draw.disabled = true;
    try {
      const r = await api.post("/api/v1/candidate/lot");
      S.state.lot = r.number;
      rerender();
    } catch (err) {
      draw.disabled = false;
      clear(msg).append(note("error", err.offline ? L("网络不通，请稍后再点【抽签】。", "No network: try again.") : err.message));
    }
  }, { class: "primary big", aria: "抽签" });
  const next = button(L("下一步", "Next"), async () => {
    await refreshState();
    route();
  }, { class: "primary", aria: "下一步" });
  return card(
    stepTitle("lot", "抽取面试顺序号", "draw your number"),
    st.lot === null
      ? note("info", L("点击【抽签】获得您在本考场的顺序号。如未在 {t} 前抽取，系统将自动为您分配。", "Click Draw to get your number in this room. If you do not draw before {t}, one is assigned for you.", { t: at(st.schedule.lot_closes_at) }))
      : note("ok", L("这是您的顺序号，请记住它。点击【下一步】继续。", "This is your number: remember it. Click Next.")),
    h("div", { class: "lot" }, h("span", { class: "label" }, L("您的顺序号", "Your number")), number),
    msg,
    h("div", { class: "actions" }, st.lot === null ? draw : next),
  );
};
