// Which browser opened the phone page, and whether it can do the phone's job (camera,
// recording; the orientation sensor only guides the sweep, a timed sweep replaces it).
//
// Most candidates in China scan the desk's QR code with WeChat, which opens the page in its
// in-app browser (Android: X5/XWeb, camera and recording in recent versions; iOS: WKWebView,
// getUserMedia since iOS 14.3). QQ and Alipay are alike. Where the platform allows, the page
// just works; where it cannot, the candidate is told at once, before binding, how to open the
// same address in the system browser.

import { tr as L } from "../shared/i18n.js";

/** @param {string} ua */
export function inAppOf(ua) {
  if (/MicroMessenger\//i.test(ua)) return "wechat";
  if (/AlipayClient/i.test(ua)) return "alipay";
  // QQ's in-app browser says " QQ/8.9.x"; the separate QQ Browser app ("MQQBrowser") is a
  // browser of its own and can do the job.
  if (/(^|[^M])QQ\/\d/.test(ua)) return "qq";
  return null;
}

/** @param {string} ua @param {number} touchPoints */
export function isIOS(ua, touchPoints = 0) {
  // iPadOS 13+ reports itself as a Mac; only its touch screen gives it away.
  return /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && touchPoints > 1);
}

export function detect(nav = navigator, win = window) {
  const ua = nav.userAgent || "";
  const inApp = inAppOf(ua);
  const ios = isIOS(ua, nav.maxTouchPoints || 0);
  const safari = ios && !inApp && /Safari\//.test(ua) && !/CriOS|FxiOS|EdgiOS|OPiOS/.test(ua);
  const secure = win.isSecureContext !== false;
  const camera = !!(nav.mediaDevices && typeof nav.mediaDevices.getUserMedia === "function");
  const recorder = typeof win.MediaRecorder === "function";
  const orientation = typeof win.DeviceOrientationEvent !== "undefined";
  const missing = [];
  if (!camera) missing.push("camera");
  if (!recorder) missing.push("recorder");
  return {
    inApp,
    ios,
    safari,
    secure,
    camera,
    recorder,
    orientation,
    missing,
    // The motion sensor needs a permission asked from a tap (iOS 13+ Safari and WKWebView).
    motionPermission:
      orientation && typeof win.DeviceOrientationEvent.requestPermission === "function",
    usable: secure && camera && recorder,
  };
}

export function appName(inApp) {
  return {
    wechat: L("微信", "WeChat"),
    qq: "QQ",
    alipay: L("支付宝", "Alipay"),
  }[inApp];
}

/** The exact taps that open this address in the system browser, for this app and system. */
export function openInBrowserSteps(p) {
  const system = p.ios ? "Safari" : L("手机自带浏览器", "the phone's own browser");
  const menu = L("点右上角的【···】", "Tap ··· at the top right");
  const item = {
    wechat: p.ios ? L("在 Safari 中打开", "Open in Safari") : L("在浏览器打开", "Open in Browser"),
    qq: p.ios ? L("在 Safari 中打开", "Open in Safari") : L("用浏览器打开", "Open with browser"),
    alipay: L("在浏览器中打开", "Open in browser"),
  }[p.inApp];
  return [
    L("{menu}（屏幕右上角三个点）。", "{menu}.", { menu }),
    L("在弹出的菜单中选择“{item}”。", "Choose “{item}” in the menu.", { item }),
    L("在{system}中打开本页后，按页面提示继续（绑定码不变）。", "Carry on in {system} (the binding stays the same).", { system }),
    L("如菜单中没有该选项：点【复制链接】，再粘贴到{system}的地址栏中打开。", "No such item? Copy the link below and paste it into {system}.", { system }),
  ];
}

/** Why this browser cannot be used, in words a candidate understands; null when it can. */
export function blockReason(p) {
  if (!p.secure) {
    return L(
      "本页必须通过 https:// 地址打开，手机浏览器才允许使用摄像头。请扫描电脑上的二维码，或输入监考方提供的 https 地址。",
      "This page must be opened over https:// for the browser to allow the camera. Scan the QR code on the computer again.",
    );
  }
  if (p.usable) return null;
  const what = [];
  if (!p.camera) what.push(L("摄像头", "the camera"));
  if (!p.recorder) what.push(L("录像", "recording"));
  const list = what.join(L("和", " and "));
  if (p.inApp) {
    return L(
      "{app}内置浏览器无法使用{list}，不能在这里完成手机佐证录像。请按下面的步骤，用手机自带的浏览器打开本页：",
      "The {app} in-app browser cannot use {list}, so the evidence recording cannot run here. Open this page in the phone's own browser:",
      { app: appName(p.inApp), list },
    );
  }
  if (p.ios) {
    return L(
      "这台 iPhone/iPad 的浏览器无法使用{list}。请将系统更新到 iOS 14.3 或更高版本，并用 Safari 打开本页。",
      "This iPhone/iPad browser cannot use {list}. Update to iOS 14.3 or later and open this page in Safari.",
      { list },
    );
  }
  return L(
    "这个浏览器无法使用{list}。请改用最新版 Chrome、Edge 或手机自带浏览器打开本页。",
    "This browser cannot use {list}. Open this page in an up-to-date Chrome, Edge or the phone's own browser.",
    { list },
  );
}
