// 2 人脸登录: the face-recognition notice and consent (./consent.js), the ticket, the capture
// (with the liveness challenge, ./liveness.js) and the manual check by tech support.

import { ApiError } from "../shared/api.js";
import { $, clear, h } from "../shared/dom.js";
import { addLiveness, livenessError } from "./liveness.js";
import { consentPanel, loadNotice, recordConsent } from "./consent.js";
import { trackSnapshotJpeg } from "../shared/recorder.js";
import * as dev from "./device.js";
import { loggedIn } from "./session.js";
import { cameraError } from "./stage-device.js";
import { stepTitle } from "./shell.js";
import { L, S, VIEWS, api, at, button, card, examId, note, save, store, video } from "./state.js";

// 2 人脸登录 ---------------------------------------------------------------------------------------

VIEWS.login = () => {
  const preview = video(S.cam, { class: "preview" });
  const ticket = h("input", { id: "ticket", name: "ticket", autocomplete: "off", inputmode: "numeric", value: store.ticket || "", required: true });
  const msg = h("div", { id: "login-message", "aria-live": "assertive" });
  if (S.loginMessage) msg.append(S.loginMessage);
  const shot = h("div", { class: "shot" });
  const go = button(L("人脸登录", "Log in with face"), () => doLogin(), { class: "primary", aria: "人脸登录" });
  const helpBox = h("div", { id: "login-help" });
  // A choice made on this page is the person's at the computer, recorded for the ticket they
  // log in with; one carried from an earlier visit holds for that visit's ticket only.
  if (!S.consent) {
    const fc = store.faceConsent;
    S.consent = fc ? { given: fc.consent, ticket: fc.ticket } : { given: null, ticket: null };
  }
  const consent = consentPanel(S.consent, {
    api,
    examId,
    onAgree: () => {
      S.consent = Object.assign(S.consent, { given: true, ticket: null });
      consent.draw();
      clear(msg);
    },
    onDecline: () => {
      S.consent = Object.assign(S.consent, { given: false, ticket: null });
      S.lastFace = null; // a capture taken before must not reach anyone now
      clear(shot);
      drawChoice();
    },
    onReconsider: () => {
      S.consent = Object.assign(S.consent, { given: null, ticket: null });
      drawChoice();
    },
  });
  function drawChoice() {
    consent.draw();
    go.hidden = S.consent.given === false;
    clear(msg);
    if (S.consent.given === false) askTechSupport(helpBox, { declined: true });
    else if (S.loginFailures >= 3) showLoginHelp(helpBox);
    else clear(helpBox);
  }
  go.hidden = S.consent.given === false;
  ticket.addEventListener("input", () => {
    // Someone else at this computer: the consent of the ticket before is not theirs.
    if (S.consent.ticket && ticket.value.trim() !== S.consent.ticket) {
      S.consent = Object.assign(S.consent, { given: null, ticket: null });
      drawChoice();
    }
  });
  if (!S.cam) {
    dev.openCamera({ cameraId: store.cameraId, micId: store.micId }).then((stream) => {
      S.cam = stream;
      preview.srcObject = stream;
    }, (err) => clear(msg).append(note("error", cameraError(err))));
  }

  async function doLogin(again = false) {
    const t = ticket.value.trim();
    if (!t) {
      clear(msg).append(note("error", L("请先输入准考证号。", "Enter your admission ticket number first.")));
      ticket.focus();
      return;
    }
    if (S.consent.given === null) {
      // The notice above says that clicking 【人脸登录】 is itself the consent: a deliberate act
      // for face recognition alone, taken after the notice was on screen, before any capture.
      S.consent = Object.assign(S.consent, { given: true, ticket: null });
      consent.draw();
    }
    if (S.consent.given !== true) {
      // Declined (Enter in the ticket field; the button is hidden then): no capture.
      clear(msg).append(note("error", L("拍照前请先阅读上方的人脸识别告知并作出选择。", "Before any photo is taken, read the face recognition notice above and choose.")));
      consent.el.classList.add("attention");
      consent.el.scrollIntoView({ block: "nearest" });
      return;
    }
    go.disabled = true;
    const fc = store.faceConsent;
    if (!fc || fc.ticket !== t || fc.consent !== true) {
      try {
        await recordConsent(api, examId, t, true);
      } catch (err) {
        return refused(err);
      }
      store.faceConsent = { ticket: t, consent: true };
      save();
    }
    if (!S.cam) {
      try {
        S.cam = await dev.openCamera({ cameraId: store.cameraId, micId: store.micId });
        preview.srcObject = S.cam;
        await new Promise((r) => setTimeout(r, 500));
      } catch (err) {
        go.disabled = false;
        clear(msg).append(note("error", cameraError(err)));
        return;
      }
    }
    clear(msg).append(note("info", L("正在核验，请保持不动…", "Checking, hold still…")));
    await firstFrame(preview, 5000);
    // From the camera track itself: the preview may be scrolled out of view (and paused).
    const jpeg = await trackSnapshotJpeg(S.cam.getVideoTracks()[0], 800, 0.9);
    if (!jpeg) {
      clear(msg).append(note("error", L("摄像头还没有画面，请稍等一秒再试。", "The camera shows nothing yet: wait a second and retry.")));
      go.disabled = false;
      return;
    }
    S.lastFace = jpeg;
    clear(shot).append(h("img", { src: URL.createObjectURL(jpeg), alt: L("本次拍摄的照片", "The photo taken") }));
    const form = new FormData();
    form.append("exam_id", examId);
    form.append("ticket", t);
    form.append("face", jpeg, "face.jpg");
    store.ticket = t;
    save();
    try {
      // With liveness required the head-turn challenge runs first (./liveness.js).
      await addLiveness(form, { api, examId, ticket: t, track: S.cam.getVideoTracks()[0], box: msg });
      // The old token (if any) lets the server hand the session to this page at once.
      const r = await api.request("POST", "/api/v1/candidate/login", { form, token: S.token || store.token || null });
      await loggedIn(r);
    } catch (err) {
      if (!again && err instanceof ApiError && err.code === "face_consent_refused" && S.consent.given === true) {
        // A refusal recorded elsewhere since this page's consent (another device, or someone
        // who knows the ticket): the person here has just agreed, so record that and retry.
        store.faceConsent = null;
        save();
        return doLogin(true);
      }
      refused(err);
    }
  }

  function refused(err) {
    go.disabled = false;
    if (!(err instanceof ApiError)) throw err;
    if (!["network", "login_not_open", "unknown_exam", "exam_over"].includes(err.code)) S.loginFailures += 1;
    clear(msg).append(note("error", loginError(err)));
    if (S.loginFailures >= 3) showLoginHelp(helpBox);
  }
  ticket.addEventListener("keydown", (e) => e.key === "Enter" && doLogin());
  if (S.consent.given === false) askTechSupport(helpBox, { declined: true });
  else if (S.loginFailures >= 3) showLoginHelp(helpBox);

  const howTo = note("info", L("请输入准考证号，把脸放在框内、正对摄像头，然后点击【人脸登录】。系统会把这张照片与您的报名照片比对。", "Enter your ticket number, put your face in the frame facing the camera, then click Log in."));
  howTo.id = "login-how";
  loadNotice(api, examId).then((n) => {
    if (n.exam.practice) howTo.textContent = L("请输入准考证号，把脸放在框内、正对摄像头，然后点击【人脸登录】。这是模拟考试，没有报名照片：您第一次成功登录时拍的照片将作为之后比对的照片。", "Enter your ticket number, put your face in the frame facing the camera, then click Log in. This practice exam has no enrolment photos: the photo of your first successful login becomes the reference.");
  }, () => {});

  return card(
    stepTitle("login", "人脸识别登录", "face check and login"),
    consent.el,
    howTo,
    h("div", { class: "grid two" },
      h("div", { class: "face-guide" }, preview, h("div", { class: "oval", "aria-hidden": "true" }), h("p", { class: "guide-text" }, L("请把脸放在椭圆框内", "Face inside the oval"))),
      h("div", null,
        // zh-CN keeps the contract's label 准考证号; English reads as English.
        h("label", { for: "ticket" }, L("准考证号", "Admission ticket number")),
        ticket,
        h("p", { class: "hint" }, L("准考证号在您的准考证上。", "The number on your admission ticket.")),
        h("div", { class: "actions" }, go),
        msg,
        shot,
        helpBox,
      ),
    ),
  );
};

/** Resolves once the video shows a picture (or after `ms`). */
export function firstFrame(v, ms) {
  if (v.videoWidth && v.readyState >= 2) return Promise.resolve(true);
  v.play().catch(() => {});
  return new Promise((resolve) => {
    const done = (ok) => {
      clearTimeout(timer);
      v.removeEventListener("loadeddata", onData);
      resolve(ok);
    };
    const onData = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    v.addEventListener("loadeddata", onData);
  });
}

export function loginError(err) {
  const b = err.body || {};
  switch (err.code) {
    case "network": return L("无法连接服务器。请检查网络后再点击【人脸登录】。", "Cannot reach the server: check the network and retry.");
    case "login_not_open": return L("登录尚未开放，将于 {t} 开放。请到时再点击【人脸登录】。", "Login opens at {t}.", { t: at(b.opens_at) });
    case "unknown_candidate": return L("没有找到这个准考证号。请核对准考证上的号码后重新输入。", "This ticket number is not on the list: check it and retry.");
    case "unknown_exam": return L("找不到这场考试。请确认打开的是考试通知中的完整链接。", "Exam not found: open the full link from your notice.");
    case "face_mismatch": return L("照片与报名照片不一致。请正对摄像头，摘下帽子、口罩和眼镜，保证脸部光线充足，再试一次。", "The photo does not match your enrolment photo. Face the camera, remove hat, mask and glasses, get good light, and retry.");
    case "no_face": return L("没有检测到人脸。请靠近摄像头，让整张脸在框内且光线充足，再试一次。", "No face found: come closer, face inside the frame, good light.");
    case "multiple_faces": return L("画面中有不止一张人脸。请确保镜头前只有您本人，再试一次。", "More than one face: only you may be in view.");
    case "bad_image": return L("照片无法识别。请稍等摄像头画面清晰后再试。", "The photo could not be read: wait for a clear picture and retry.");
    case "session_active_elsewhere": return L("您的账号正在另一台设备上使用。请先关闭另一台设备上的考试页面，约 20 秒后再试。", "Your account is in use on another device: close that page, wait 20 seconds and retry.");
    case "exam_over": return L("本场考试已结束，无法登录。", "This exam is over.");
    case "too_many_attempts": return L("尝试次数过多，请等几分钟再试，或点击【求助】联系技术服务。", "Too many attempts: wait a few minutes or ask for help.");
    case "not_enrolled": return L("系统中没有您的报名照片，无法比对。请点击【求助】联系技术服务。", "No enrolment photo on file: ask tech support.");
    default: return livenessError(err) || err.message || err.code;
  }
}

export function showLoginHelp(box) {
  clear(box).append(
    h("div", { class: "help-box" },
      h("p", null, L("已连续多次未通过人脸识别。", "Face check failed several times.")),
      button(L("求助", "Help"), () => askTechSupport(box), { class: "secondary", aria: "求助" }),
    ),
  );
}

// After repeated failures the candidate asks tech support, who compare the last capture with
// the enrolment photo and let them in by hand; the page waits for the decision.
export function askTechSupport(box, { declined = false } = {}) {
  const text = h("textarea", { id: "login-help-text", rows: 3, maxlength: 1000, "aria-label": L("说明", "Message") });
  const msg = h("div", { "aria-live": "polite" });
  const send = button(L("提交求助", "Send to tech support"), submit, { class: "primary" });
  clear(box).append(h("div", { class: "help-box", id: declined ? "manual-check" : undefined },
    h("h2", null, declined ? L("申请人工核验身份", "Ask for a manual identity check") : L("联系技术服务", "Contact tech support")),
    declined
      ? h("p", null, L("技术服务人员将不使用人脸识别，人工核验您的身份（例如电话或视频核对身份证件）。请填写上方的准考证号，可简单说明情况，然后点击【提交求助】，并保持本页面打开。", "Tech support will check who you are by hand, without face recognition (for example by phone or video with your ID card). Fill in your ticket number above, add a note if you like, click Send and keep this page open."))
      : h("p", null, L("技术服务人员将把您刚才拍摄的照片与报名照片人工比对。请简单说明情况（可不填），然后点击【提交求助】，并保持本页面打开。", "Tech support will compare your last photo with your enrolment photo by hand. Describe the problem (optional), click Send and keep this page open.")),
    declined ? null : h("p", null, L("常见原因：光线太暗或背光、戴了帽子或口罩、离摄像头太远。", "Common causes: poor or back light, hat or mask, too far from the camera.")),
    text, h("div", { class: "actions" }, send), msg));

  async function submit() {
    const ticket = ($("#ticket") && $("#ticket").value.trim()) || store.ticket;
    if (!ticket) {
      clear(msg).append(note("error", L("请先输入准考证号。", "Enter your ticket number first.")));
      return;
    }
    store.ticket = ticket;
    save();
    const form = new FormData();
    form.append("exam_id", examId);
    form.append("ticket", ticket);
    form.append("text", text.value.trim());
    if (S.lastFace && !declined) form.append("face", S.lastFace, "face.jpg");
    send.disabled = true;
    try {
      if (declined) {
        // The refusal goes into the candidate's log first; the server then takes the request
        // without failed face logins and keeps any face out of it.
        const fc = store.faceConsent;
        if (!fc || fc.ticket !== ticket || fc.consent !== false) {
          await recordConsent(api, examId, ticket, false);
          store.faceConsent = { ticket, consent: false };
          save();
        }
      }
      const r = await api.request("POST", "/api/v1/candidate/login-help", { form, token: null });
      clear(msg).append(note("info", L("已提交，正在等待技术服务审核，请不要关闭本页面…", "Sent. Waiting for tech support; keep this page open…")));
      waitForDecision(r.request_id, r.poll_token, msg, send);
    } catch (err) {
      send.disabled = false;
      clear(msg).append(note("error", err instanceof ApiError ? loginError(err) : String(err)));
    }
  }
}

export async function waitForDecision(id, poll, msg, send) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 3000));
    let r;
    try {
      r = await api.request("GET", `/api/v1/candidate/login-help/${encodeURIComponent(id)}?poll=${encodeURIComponent(poll)}`, { token: null });
    } catch (err) {
      if (err instanceof ApiError && err.code !== "network") {
        clear(msg).append(note("error", err.message));
        send.disabled = false;
        return;
      }
      continue; // offline for a moment: keep waiting
    }
    if (r.status === "rejected") {
      clear(msg).append(note("error", L("技术服务未通过：", "Tech support declined: "), r.reason || ""));
      send.disabled = false;
      return;
    }
    if (r.status === "approved" && r.token) {
      await loggedIn(r);
      return;
    }
  }
}
