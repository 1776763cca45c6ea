// Liveness at face login (docs/liveness.md): when the exam asks for it, the server hands out a
// short random challenge (请向左转头 / 请向右转头); this shows each prompt with an arrow and a
// progress bar, captures the camera a fixed number of times per prompt (about 2 a second) and
// adds the frames to the login form. The server judges them; nothing is decided here.

import { h, clear } from "../shared/dom.js";
import { tr as L } from "../shared/i18n.js";
import { trackSnapshotJpeg } from "../shared/recorder.js";

const PROMPTS = {
  left: () => L("请向左转头", "Turn your head to the left"),
  right: () => L("请向右转头", "Turn your head to the right"),
};
const ARROWS = { left: "←", right: "→" };
const FRAME_WIDTH = 640;
const FRAME_QUALITY = 0.85;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Asks for a challenge and performs it. Adds `challenge_id` and the `frames` to `form` and
 * returns true; returns false when the exam's login is the single photo. ApiErrors of the
 * challenge request (login_not_open, unknown_candidate, too_many_attempts...) propagate.
 */
export async function addLiveness(form, { api, examId, ticket, track, box }) {
  const c = await api.request("POST", "/api/v1/candidate/liveness", { json: { exam_id: examId, ticket }, token: null });
  if (!c.required) return false;
  const arrow = h("div", { class: "liveness-arrow", "aria-hidden": "true" });
  const prompt = h("p", { class: "liveness-prompt", id: "liveness-prompt", role: "status" });
  const bar = h("progress", { id: "liveness-progress", max: c.frames, value: 0, "aria-label": L("活体检测进度", "Liveness progress") });
  const panel = h("div", { class: "liveness", id: "liveness" },
    h("p", { class: "hint" }, L("活体检测：请按提示转头，每个动作做完后转回正面。", "Liveness check: turn your head as shown, then back to the front.")),
    arrow, prompt, bar);
  clear(box).append(panel);
  let taken = 0;
  for (const [i, step] of c.steps.entries()) {
    arrow.textContent = ARROWS[step] || "";
    arrow.dataset.step = step;
    prompt.textContent = `${PROMPTS[step] ? PROMPTS[step]() : step}（${i + 1}/${c.steps.length}）`;
    for (let k = 0; k < c.frames_per_step; k++) {
      // A fixed pace from the prompt's start, so slow snapshots do not stretch the step.
      await sleep(c.frame_interval_ms);
      const frame = await trackSnapshotJpeg(track, FRAME_WIDTH, FRAME_QUALITY);
      if (frame) form.append("frames", frame, `frame${taken}.jpg`);
      taken += 1;
      bar.value = taken;
    }
  }
  form.append("challenge_id", c.challenge_id);
  prompt.textContent = L("请正对摄像头，正在核验…", "Face the camera, checking…");
  arrow.textContent = "";
  return true;
}

/** The candidate-facing sentence for the quality gate's and the challenge's refusals, or null. */
export function livenessError(err) {
  const b = err.body || {};
  switch (err.code) {
    case "liveness_failed": {
      if (b.reason === "turn_not_seen" && Array.isArray(b.not_seen) && b.not_seen.length) {
        const missed = b.not_seen.map((s) => (PROMPTS[s] ? PROMPTS[s]() : s)).join(L("、", ", "));
        return L("活体检测未通过：没有看到您按提示{m}。请在提示出现时把头明显地转向提示的方向（约 30 度），再转回正面。", "Liveness check failed: we did not see you {m}. When the prompt appears, turn your head clearly (about 30 degrees) that way, then back.", { m: missed });
      }
      return L(err.message, "Liveness check failed: only you, facing the camera, then turning as shown. Retry.");
    }
    case "liveness_required": return L("本场考试需要活体检测，请刷新页面后重试。", "This exam needs a liveness check: reload the page and retry.");
    case "liveness_challenge_expired": return L("活体检测已超时，请重新点击【人脸登录】，并按提示及时转头。", "The liveness check timed out: click Log in again and follow the prompts.");
    case "liveness_challenge_used":
    case "liveness_challenge_invalid": return L("活体检测无效，请重新点击【人脸登录】。", "The liveness check is no longer valid: click Log in again.");
    case "face_not_frontal": return L("请正对摄像头：脸部没有朝向正前方，请勿侧脸。", "Face the camera straight on, not turned to the side.");
    case "face_covered": return L("检测到面部被遮挡：请摘下口罩，移开手或其他遮挡物，露出完整的脸部和双耳。", "Your face is covered: remove the mask, hands or anything else; face and ears must show.");
    case "face_cut_off": return L("脸部没有完整在画面内：请把整张脸（包括额头、下巴和双耳）放在画面中央。", "Your face is not wholly in the picture: centre your whole face, forehead, chin and ears.");
    case "too_dark": return L("光线太暗：请打开灯或面向光源，避免背光，再重试。", "Too dark: switch on a light or face the light, avoid back light, and retry.");
    case "low_quality": return L("画面不够清晰：请关闭美颜、滤镜等特效，擦拭镜头，保持不动后重试。", "The picture is not sharp: turn off beauty filters and effects, clean the lens, hold still and retry.");
    default: return null;
  }
}
