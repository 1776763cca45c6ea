// Separate consent to face recognition (人脸识别技术应用安全管理办法, in force 2025-06-01):
// before the first face capture the login page says what is captured, why, who sees it and
// how long it is kept (the exam's retention, GET /candidate/face-consent), and the candidate
// chooses 【同意】 (or clicks 【人脸登录】, which the notice says is the same consent) or 不同意. The choice is recorded in their event log (POST the same path)
// just before the capture, or before the manual check that replaces it (docs/api.md).
//
// Labels: the consent is the only button named 同意; the refusal is a link (不同意), so an
// automated check that clicks the button 同意 finds exactly one.

import { h, clear } from "../shared/dom.js";
import { clockTime, tr as L } from "../shared/i18n.js";

let notice = null; // the exam's notice, fetched once per page

/** The exam's notice (GET /candidate/face-consent), fetched once per page. */
export async function loadNotice(api, examId) {
  if (notice) return notice;
  notice = await api.request("GET", `/api/v1/candidate/face-consent?exam_id=${encodeURIComponent(examId)}`, { token: null });
  return notice;
}

/** Records the decision for this ticket in the candidate's event log (throws ApiError). */
export function recordConsent(api, examId, ticket, consent) {
  return api.request("POST", "/api/v1/candidate/face-consent", { json: { exam_id: examId, ticket, consent }, token: null });
}

function item(term, text) {
  return [h("dt", null, term), h("dd", null, text)];
}

/**
 * The notice and the choice, as a panel that redraws itself.
 * @param {{given: boolean|null}} state  shared with the login view
 * @param {{api, examId, onAgree: () => void, onDecline: () => void, onReconsider: () => void}} opts
 */
export function consentPanel(state, { api, examId, onAgree, onDecline, onReconsider }) {
  const el = h("section", { class: "consent", id: "face-consent", "aria-labelledby": "face-consent-title" });
  const retention = h("dd", { id: "consent-retention" }, L("考试结束后按本场考试规定的期限保存，期满自动删除。", "Kept for the period this exam sets after it ends, then deleted automatically."));
  const liveness = h("span");
  const purpose = h("dd", { id: "consent-purpose" }, L("与您的报名照片比对，确认是本人参加考试；考试中确认始终是本人作答。不用于本场考试以外的任何目的。", "To compare with your enrolment photo so that only you take this exam, and to confirm during the exam that you are the one answering. Nothing else."));

  function fill(n) {
    const r = n.retention;
    retention.textContent = L(
      "考试结束后保存 {d} 天（至 {t}），期满自动删除照片、录像、截图和人脸特征，删除情况记入考试日志。",
      "{d} days after the exam (until {t}); then the photos, recordings, snapshots and face data are deleted automatically, and the deletion is logged.",
      { d: r.days, t: clockTime(r.purge_at, n.exam.utc_offset_minutes).slice(0, 10) },
    );
    if (n.exam.practice) {
      purpose.textContent = L("这是模拟考试，没有报名照片：您第一次成功登录时的照片作为比对照片，之后的登录和考试中的截图都与它比对，确认始终是本人作答。不用于本场考试以外的任何目的。", "This is a practice exam without enrolment photos: the photo of your first successful login becomes the reference that later logins and the snapshots during the exam are compared with. Nothing else.");
    }
    liveness.textContent = n.exam.liveness === "required" ? L("，以及按提示转头时的几张画面", ", and a few frames while you turn your head as prompted") : "";
  }

  function draw() {
    clear(el);
    el.className = `consent ${state.given === true ? "given" : state.given === false ? "declined" : "ask"}`;
    if (state.given === true) {
      el.append(h("p", { class: "note ok", id: "consent-given" }, L("您已授权本场考试使用人脸识别核验身份。", "You have allowed face recognition for this exam.")));
      return;
    }
    if (state.given === false) {
      el.append(
        h("p", { class: "note warn", id: "consent-declined" }, L(
          "您选择了不使用人脸识别：本页面不会拍摄或上传您的人脸照片。请在下方填写准考证号并提交人工核验申请，技术服务人员会核实您的身份（请准备好身份证件）。",
          "You chose not to use face recognition: this page takes and sends no photo of your face. Enter your ticket number below and ask for a manual check; tech support will verify who you are (have your ID card ready).",
        )),
        h("p", null, h("button", { type: "button", class: "link", onclick: onReconsider }, L("改为使用人脸识别登录", "Use face recognition after all"))),
      );
      return;
    }
    const agree = h("button", { type: "button", class: "primary", id: "consent-agree", "aria-label": "同意", onclick: onAgree }, L("同意", "Agree"));
    const decline = h("a", { href: "#manual-check", id: "consent-decline", onclick: (e) => { e.preventDefault(); onDecline(); } }, L("不同意", "Decline"));
    el.append(
      h("h2", { id: "face-consent-title" }, L("人脸识别告知", "Face recognition notice")),
      h("p", null, L("登录前请阅读以下内容并作出选择。在您选择之前，本页面不会拍摄任何照片。", "Please read this and choose before logging in. Until you choose, this page takes no photo.")),
      h("dl", { class: "consent-items" },
        item(L("采集什么", "What is captured"), [L("登录时的人脸照片", "A photo of your face at login"), liveness, L("；考试期间的摄像头录像和每隔几秒的截图；由照片计算出的人脸特征。", "; the camera recording and a snapshot every few seconds during the exam; face features computed from the photos.")]),
        [h("dt", null, L("用于什么", "Why")), purpose],
        item(L("谁能看到", "Who sees it"), L("本场考试的监考员、技术服务人员和考务工作小组。", "This exam's proctors, tech support and review panel.")),
        [h("dt", null, L("保存多久", "How long it is kept")), retention],
      ),
      h("p", { class: "consent-act" }, L("点击【同意】或下方的【人脸登录】，即表示您单独同意本场考试按上述方式使用人脸识别。", "Clicking Agree, or Log in with face below, means you agree to face recognition for this exam as described above.")),
      h("p", { class: "hint" }, L("如果拒绝，不影响参加考试：不拍摄您的人脸照片，改由技术服务人员人工核验身份。", "Declining does not keep you from the exam: no photo of your face is taken and tech support checks who you are by hand.")),
      h("div", { class: "actions consent-actions" }, decline, agree),
    );
  }

  loadNotice(api, examId).then(fill, () => {});
  if (notice) fill(notice);
  draw();
  return { el, draw };
}
