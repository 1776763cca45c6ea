// 1 设备准备: camera, microphone, 5 s test recording, network, battery, browser, monitors.

import { $, clear, h } from "../shared/dom.js";
import * as dev from "./device.js";
import { show, stepTitle } from "./shell.js";
import { L, S, VIEWS, at, button, card, emit, note, pick, save, store, video } from "./state.js";

// 1 设备准备 ---------------------------------------------------------------------------------------

VIEWS.device = () => {
  const status = h("div", { class: "checks" });
  const preview = video(S.cam, { class: "preview" });
  const camSel = h("select", { id: "camera-select", "aria-label": L("选择摄像头", "Camera") });
  const micSel = h("select", { id: "mic-select", "aria-label": L("选择麦克风", "Microphone") });
  const meter = h("div", { class: "meter", role: "meter", "aria-label": L("麦克风音量", "Microphone level"), "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" }, h("span"));
  const playback = h("div", { class: "playback" });
  const rows = {};
  const row = (key, title) => {
    rows[key] = h("li", { class: "pending" }, h("strong", null, title), h("span", { class: "detail" }, L("检测中…", "Checking…")));
    return rows[key];
  };
  const set = (key, state, text) => {
    rows[key].className = state;
    rows[key].querySelector(".detail").textContent = text;
  };
  const next = button(L("下一步", "Next"), () => {
    emitLater("device_check", S.report);
    show("login");
  }, { class: "primary", aria: "下一步", disabled: true });
  const testBtn = button(L("开始 5 秒测试录制", "Record a 5 s test"), async () => {
    if (!S.cam) return;
    testBtn.disabled = true;
    clear(playback).append(note("info", L("正在录制，请说几句话…", "Recording, say a few words…")));
    try {
      const r = await dev.testRecording(S.cam, 5);
      const v = h("video", { controls: true, src: r.url, class: "preview small", id: "test-playback" });
      clear(playback).append(note("ok", L("录制完成，请播放并确认能看到自己、听到声音。", "Done: play it and check you can see and hear yourself.")), v);
      S.report.test_recording = { bytes: r.size, mime: r.mime };
      v.play().catch(() => {});
    } catch (err) {
      clear(playback).append(note("error", L("测试录制失败：{e}", "Test recording failed: {e}", { e: String(err) })));
    }
    testBtn.disabled = false;
  }, { class: "secondary" });

  const checks = h("ul", { class: "checklist" },
    row("browser", L("浏览器", "Browser")),
    row("camera", L("摄像头", "Camera")),
    row("mic", L("麦克风", "Microphone")),
    row("network", L("网络", "Network")),
    row("battery", L("电量", "Battery")),
    row("screens", L("显示器", "Monitors")),
  );
  status.append(checks);

  async function openDevices(ids) {
    try {
      const stream = await dev.openCamera(ids);
      if (S.cam && S.cam !== stream) S.cam.getTracks().forEach((t) => t.stop());
      S.cam = stream;
      preview.srcObject = stream;
      const vt = stream.getVideoTracks()[0];
      const at = stream.getAudioTracks()[0];
      store.cameraId = vt.getSettings().deviceId;
      store.micId = at ? at.getSettings().deviceId : null;
      save();
      const virt = dev.VIRTUAL_CAMERA.test(vt.label);
      S.report.camera = { label: vt.label.slice(0, 80), virtual: virt, ...pick(vt.getSettings(), ["width", "height", "frameRate"]) };
      set("camera", virt ? "warn" : "ok", virt
        ? L("检测到虚拟摄像头（{l}）。考试必须使用真实摄像头，请在上方选择其他摄像头。", "A virtual camera ({l}) is selected: choose a real camera above.", { l: vt.label })
        : L("正常：{l}", "OK: {l}", { l: vt.label || L("默认摄像头", "default camera") }));
      if (S.meter) S.meter.stop();
      S.meter = new dev.LevelMeter(stream, (level) => {
        meter.firstChild.style.width = `${Math.round(level * 100)}%`;
        meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
      });
      set("mic", at ? "ok" : "bad", at
        ? L("正常：{l}。请说话，音量条应随声音跳动。", "OK: {l}. Speak: the bar should move.", { l: at.label || L("默认麦克风", "default microphone") })
        : L("没有麦克风。请连接麦克风后点击【刷新设备】。", "No microphone: connect one and refresh."));
      S.report.microphone = at ? { label: at.label.slice(0, 80) } : null;
      await fillSelects(camSel, micSel);
      const others = S.report.virtual_cameras.filter((l) => l !== vt.label);
      if (!virt && others.length) {
        set("camera", "warn", L("正常：{l}。注意：本机装有虚拟摄像头软件（{v}），考试中不得使用，请关闭该软件。", "OK: {l}. Note: virtual camera software is installed ({v}); it must not be used, please close it.", { l: vt.label, v: others.join("、") }));
      }
      next.disabled = !at || !S.report.browser_ok;
    } catch (err) {
      set("camera", "bad", cameraError(err));
      set("mic", "bad", L("无法使用麦克风。", "Microphone unavailable."));
      S.report.camera = { error: String(err && err.name) };
    }
  }

  camSel.onchange = () => openDevices({ cameraId: camSel.value, micId: micSel.value });
  micSel.onchange = () => openDevices({ cameraId: camSel.value, micId: micSel.value });

  (async () => {
    const b = dev.browserCheck();
    S.report.browser = { name: b.name, version: b.version, problems: b.problems };
    S.report.browser_ok = b.ok || (b.problems.length === 1 && b.problems[0] === "not_chrome");
    set("browser", b.ok ? "ok" : S.report.browser_ok ? "warn" : "bad", b.ok
      ? L("{n} {v}，支持本考试。", "{n} {v}: supported.", { n: b.name, v: b.version })
      : browserProblem(b));
    await openDevices({ cameraId: store.cameraId, micId: store.micId });
    const ext = dev.secondScreen();
    S.report.extended = ext;
    set("screens", ext ? "warn" : "ok", ext
      ? L("检测到多个显示器。考试时只能使用一个显示器，请断开其他显示器。", "More than one monitor: disconnect the others before the exam.")
      : ext === null ? L("无法检测显示器数量，请确认只连接了一个显示器。", "Cannot detect monitors: make sure only one is connected.") : L("只有一个显示器，正常。", "One monitor: OK."));
    const bat = await dev.battery();
    S.report.battery = bat;
    if (!bat) set("battery", "ok", L("无法读取电量（台式机可忽略）。笔记本请连接电源。", "Battery unknown (fine on a desktop). Plug in a laptop."));
    else if (bat.level < 0.5 && !bat.charging) set("battery", "warn", L("电量 {p}%，且未在充电。请立即连接电源，以免考试中断电。", "Battery {p}% and not charging: plug in now.", { p: Math.round(bat.level * 100) }));
    else set("battery", "ok", L("电量 {p}%{c}。", "Battery {p}%{c}.", { p: Math.round(bat.level * 100), c: bat.charging ? L("，正在充电", ", charging") : "" }));
    const sp = await dev.speedTest();
    S.report.network = sp;
    if (sp.kind === "offline") set("network", "bad", L("无法连接服务器，请检查网络。", "Cannot reach the server: check the network."));
    else if (sp.kind === "upload") set("network", sp.kbps < 1000 ? "warn" : "ok", sp.kbps < 1000
      ? L("上传速度约 {k} kbps，偏慢。考试录像需要至少 1 Mbps，请换用更稳定的网络。", "Upload about {k} kbps: too slow, 1 Mbps needed.", { k: sp.kbps })
      : L("上传速度约 {k} Mbps，正常。", "Upload about {k} Mbps: OK.", { k: mbps(sp.kbps) }));
    else set("network", sp.ms > 500 ? "warn" : "ok", L("服务器可以连接，往返延迟约 {m} 毫秒（此服务器未提供上传测速，仅测得延迟）。", "Server reachable, round trip about {m} ms (this server offers no upload test; latency only).", { m: sp.ms }));
  })();

  S.leave = () => {};
  return card(
    stepTitle("device", "检查设备", "check your devices"),
    note("info", L("请确认能看到自己的画面、说话时音量条会跳动，并录一段 5 秒的视频回放确认。全部正常后点击【下一步】。", "Check that you see yourself, that the level bar moves when you speak, and play back a 5 s test recording. Then click Next.")),
    h("div", { class: "grid two" },
      h("div", null, preview, h("label", null, L("摄像头", "Camera"), camSel), h("label", null, L("麦克风", "Microphone"), micSel), meter, h("div", { class: "row" }, testBtn), playback),
      status,
    ),
    h("div", { class: "actions" }, next),
  );
};


export function cameraError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError") return L("摄像头权限被拒绝。请点击地址栏左侧的图标，允许使用摄像头和麦克风，然后刷新页面。", "Camera permission denied: allow camera and microphone in the address bar, then reload.");
  if (name === "NotFoundError") return L("没有找到摄像头。请连接摄像头后刷新页面。", "No camera found: connect one and reload.");
  if (name === "NotReadableError") return L("摄像头被其他程序占用。请关闭其他使用摄像头的软件（如会议软件）后刷新页面。", "The camera is in use by another program: close it and reload.");
  return L("无法打开摄像头：{e}", "Cannot open the camera: {e}", { e: String(err) });
}

export function browserProblem(b) {
  if (b.problems.includes("not_chrome")) return L("建议使用最新版 Chrome 或 Edge 浏览器参加考试。", "Use the latest Chrome or Edge.");
  if (b.problems.includes("old_chrome")) return L("浏览器版本过旧，请升级到最新版 Chrome。", "Your browser is too old: update Chrome.");
  if (b.problems.includes("insecure")) return L("页面地址不安全（须为 https），请使用考试通知中的正确链接。", "The page is not secure (https needed): use the link from your notice.");
  return L("当前浏览器不支持考试所需功能（{p}），请使用最新版 Chrome。", "This browser lacks what the exam needs ({p}): use the latest Chrome.", { p: b.problems.join(", ") });
}

export async function fillSelects(camSel, micSel) {
  const { cameras, mics } = await dev.listDevices();
  const cur = S.cam ? S.cam.getVideoTracks()[0]?.getSettings().deviceId : null;
  const curMic = S.cam ? S.cam.getAudioTracks()[0]?.getSettings().deviceId : null;
  clear(camSel);
  cameras.forEach((d, i) => camSel.append(h("option", { value: d.deviceId, selected: d.deviceId === cur }, (d.label || L("摄像头 {n}", "Camera {n}", { n: i + 1 })) + (dev.VIRTUAL_CAMERA.test(d.label) ? L("（虚拟摄像头）", " (virtual)") : ""))));
  clear(micSel);
  mics.forEach((d, i) => micSel.append(h("option", { value: d.deviceId, selected: d.deviceId === curMic }, d.label || L("麦克风 {n}", "Microphone {n}", { n: i + 1 }))));
  const virtual = cameras.filter((d) => dev.VIRTUAL_CAMERA.test(d.label)).map((d) => d.label);
  S.report.virtual_cameras = virtual;
}

// Events before login wait in the queue; they go out once a token exists.
export function emitLater(kind, data) {
  emit(kind, data);
}

/** 1.2, 12, 111: a speed as a person reads it (two significant figures below 10 Mbps). */
function mbps(kbps) {
  const m = kbps / 1000;
  return m < 10 ? m.toFixed(1) : String(Math.round(m));
}
