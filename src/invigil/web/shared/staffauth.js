// Staff sign-in shared by the review and admin pages: the 用户名 / 密码 / 登录 form (contract
// labels), the token kept per tab in sessionStorage, and blob: URLs for files behind the token
// (<img>, <video> and downloads cannot send an Authorization header themselves).

import { createApi } from "./api.js";
import { h } from "./dom.js";
import { tr } from "./i18n.js";

const TOKEN_KEY = "invigil.staff.token";

export function createStaffSession({ onLogout } = {}) {
  const session = {
    token: sessionStorage.getItem(TOKEN_KEY),
    me: null,
    api: null,
    setToken(token) {
      session.token = token;
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    },
    logout() {
      session.setToken(null);
      session.me = null;
      for (const url of blobs.values()) url.then((u) => URL.revokeObjectURL(u)).catch(() => {});
      blobs.clear();
      if (onLogout) onLogout();
    },
    /** 退出: revoke the token on the server (and the signed media links made with it), then
     * forget it here. Out of reach or refused, the page signs out all the same. */
    async signOut() {
      if (session.token) {
        await fetch("/api/v1/staff/logout", { method: "POST", headers: { Authorization: `Bearer ${session.token}` } }).catch(() => {});
      }
      session.logout();
    },
    hasRole(...roles) {
      return !!session.me && session.me.roles.some((r) => roles.includes(r));
    },
    /** A blob: URL for an authenticated path; cached per path until logout. */
    blobUrl(path) {
      if (!blobs.has(path)) {
        const p = fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" }).then(async (res) => {
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          return URL.createObjectURL(await res.blob());
        });
        p.catch(() => blobs.delete(path));
        blobs.set(path, p);
      }
      return blobs.get(path);
    },
    /** Download an authenticated file under its server-given name. */
    async download(path, fallbackName) {
      const res = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const cd = res.headers.get("content-disposition") || "";
      const m = /filename\*=UTF-8''([^;]+)/i.exec(cd) || /filename="?([^";]+)"?/i.exec(cd);
      const name = m ? decodeURIComponent(m[1]) : fallbackName;
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      return name;
    },
  };
  const blobs = new Map();
  session.api = createApi({ getToken: () => session.token, onUnauthorized: () => session.logout() });
  return session;
}

/** The staff login form; calls onDone() once signed in. */
export function loginForm(session, onDone) {
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", role: "status" });
  const form = h(
    "form",
    { class: "card login", "aria-labelledby": "login-title" },
    h("h2", { id: "login-title" }, tr("工作人员登录", "Staff sign-in")),
    h("label", { for: "username" }, tr("用户名", "用户名 Username")),
    user,
    h("label", { for: "password" }, tr("密码", "密码 Password")),
    pass,
    error,
    h("button", { type: "submit", class: "primary" }, tr("登录", "登录 Sign in")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const body = await session.api.post("/api/v1/staff/login", { username: user.value.trim(), password: pass.value }, { token: null });
      session.setToken(body.token);
      pass.value = "";
      session.me = await session.api.get("/api/v1/staff/me");
      onDone();
    } catch (err) {
      error.textContent = err.status === 401 ? tr("用户名或密码错误。", "Wrong username or password.") : tr("登录失败：{m}", "Sign-in failed: {m}", { m: err.message });
    }
  });
  return form;
}

/** The start of every staff page's route: load who is signed in (a stored token may have
 * expired), redraw the page chrome, and give the route a fresh box inside `view` — a slower
 * earlier route that finishes late writes into a detached box, not beside this one. Signed
 * out, the box shows the login form (which routes again) and null is returned. */
export async function routeBox(session, view, chrome, route) {
  if (session.token && !session.me) {
    try {
      session.me = await session.api.get("/api/v1/staff/me");
    } catch {
      session.setToken(null);
    }
  }
  chrome();
  const root = h("div");
  view.replaceChildren(root);
  if (!session.me) {
    root.append(h("div", { class: "login-view" }, loginForm(session, () => route())));
    document.getElementById("username").focus();
    return null;
  }
  return root;
}
