// Client events (integrity signals, device checks, errors) for /api/v1/candidate/events.
// Each is stamped with the client's time and kept in localStorage until the server took it, so
// what happens offline (or just before a crash) is sent later, with when it happened.

export class EventQueue {
  constructor({ api, storageKey, path = "/api/v1/candidate/events", onChange } = {}) {
    this.api = api;
    this.key = storageKey;
    this.path = path;
    this.onChange = onChange || (() => {});
    this.queue = this._load();
    this.sent = []; // what the server accepted in this page (test hook)
    this.enabled = false;
    this._busy = false;
    this._timer = null;
    this._onOnline = () => this.flush();
    this._notBefore = 0; // performance.now(): the server asked to wait (503/429 Retry-After)
  }

  _load() {
    try {
      return JSON.parse(localStorage.getItem(this.key) || "[]");
    } catch {
      return [];
    }
  }

  _save() {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.queue.slice(-500)));
    } catch {
      /* full: the queue stays in memory */
    }
  }

  /** Queue an event; it is sent as soon as a token and the network allow. */
  push(kind, data = {}) {
    const ev = { kind, data: { ...data, client_at: new Date().toISOString() }, online: navigator.onLine };
    this.queue.push(ev);
    this._save();
    this.onChange(this);
    this.flush();
    return ev;
  }

  start() {
    this.enabled = true;
    if (!this._timer) this._timer = setInterval(() => this.flush(), 3000);
    addEventListener("online", this._onOnline);
    this.flush();
  }

  stop() {
    clearInterval(this._timer);
    this._timer = null;
    removeEventListener("online", this._onOnline);
  }

  get pending() {
    return this.queue.length;
  }

  async flush() {
    if (!this.enabled || this._busy || !this.queue.length || performance.now() < this._notBefore) return;
    this._busy = true;
    try {
      while (this.queue.length) {
        const ev = this.queue[0];
        const data = { ...ev.data };
        const age = Date.now() - Date.parse(data.client_at);
        if (age > 1000) data.delayed_s = Math.round(age / 1000);
        if (!ev.online) data.queued_offline = true;
        try {
          await this.api.post(this.path, { kind: ev.kind, data });
        } catch (err) {
          if (err.retryAfter) this._notBefore = Math.max(this._notBefore, performance.now() + err.retryAfter * 1000);
          if (err.offline || err.status >= 500 || err.status === 401 || err.status === 429) break;
          // Refused for good (unknown kind, too large): drop it rather than block the queue.
        }
        this.queue.shift();
        this.sent.push({ kind: ev.kind, data });
        this._save();
      }
    } finally {
      this._busy = false;
      this.onChange(this);
    }
  }
}
