// A small JSON client for the invigil API: bearer token, errors as ApiError, network failures
// as ApiError with status 0 and code "network" (so callers can tell "offline" from "refused").

export class ApiError extends Error {
  constructor(status, code, message, body, retryAfter = 0) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.body = body || {};
    // Seconds the server asked to wait (Retry-After of a 503 server_busy or a 429), else 0.
    this.retryAfter = retryAfter;
  }
  get offline() {
    return this.status === 0;
  }
}

export function createApi({ getToken = () => null, onUnauthorized = null, timeoutMs = 30000 } = {}) {
  async function request(method, path, { json, form, body, headers = {}, token, timeout, raw } = {}) {
    const h = { ...headers };
    const bearer = token === undefined ? getToken() : token;
    if (bearer) h.Authorization = `Bearer ${bearer}`;
    let payload = body;
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    } else if (form !== undefined) {
      payload = form;
    }
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeout || timeoutMs);
    let res;
    try {
      res = await fetch(path, { method, headers: h, body: payload, signal: ctrl.signal, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "network", String(err && err.message ? err.message : err));
    } finally {
      clearTimeout(timer);
    }
    if (raw && res.ok) return res;
    let data = null;
    const type = res.headers.get("content-type") || "";
    if (type.includes("application/json")) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e, retryAfterSeconds(res));
      if (res.status === 401 && onUnauthorized) onUnauthorized(err);
      throw err;
    }
    return data === null ? { status: res.status } : Object.assign(data, { __status: res.status });
  }
  return {
    request,
    get: (path, opts) => request("GET", path, opts),
    post: (path, json, opts) => request("POST", path, { ...opts, json }),
  };
}

/** Retry-After in seconds (a number or an HTTP date), 0 when absent; at most 10 minutes. */
export function retryAfterSeconds(res) {
  const v = res.headers.get("retry-after");
  if (!v) return 0;
  const n = /^\d+$/.test(v.trim()) ? Number(v) : (Date.parse(v) - Date.now()) / 1000;
  return Number.isFinite(n) && n > 0 ? Math.min(600, n) : 0;
}

// The server's clock as seen from here: offset measured at each response, kept on the
// monotonic clock so a change of the computer's time cannot move the countdown.
export class ServerClock {
  constructor() {
    this.base = null; // server ms at perfBase
    this.perfBase = 0;
    this.rtt = Infinity;
    this.syncedAt = 0;
  }
  now() {
    if (this.base === null) return Date.now();
    return this.base + (performance.now() - this.perfBase);
  }
  known() {
    return this.base !== null;
  }
  /** Record a server time seen in a response that took [t0, t1] (performance.now() ms). */
  observe(serverIso, t0, t1) {
    const server = Date.parse(serverIso);
    if (Number.isNaN(server)) return;
    const rtt = t1 - t0;
    // Prefer fresh samples; a much slower round trip than the best seen is less precise. But a
    // sample that contradicts the estimate by more than its own uncertainty (plus a second)
    // means the estimate is wrong (the computer slept and the monotonic clock paused, or the
    // server's clock was set): take it at once rather than count down wrongly for 30 s.
    const stale = performance.now() - this.syncedAt > 30000;
    const sample = server + rtt / 2;
    const wrong = this.base !== null && Math.abs(sample - (this.base + (t1 - this.perfBase))) > rtt / 2 + 1000;
    if (this.base === null || stale || wrong || rtt <= this.rtt * 2 + 50) {
      this.base = sample;
      this.perfBase = t1;
      this.rtt = Math.min(rtt, stale || wrong ? rtt : this.rtt);
      this.syncedAt = t1;
    }
  }
  async sync(api) {
    const t0 = performance.now();
    const r = await api.get("/api/v1/time", { token: null });
    this.observe(r.now, t0, performance.now());
    return this.now();
  }
}
