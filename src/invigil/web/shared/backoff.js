// Honouring a loaded server (core/backpressure.py): a snapshot, heartbeat or phone status that
// comes back 503 server_busy or 429 with Retry-After makes the next one of its kind wait that
// long. Periodic traffic is replaceable (the next snapshot is as good as a missed one); chunks
// are not and never go through here: the upload engine keeps them in IndexedDB and retries
// after the same Retry-After (upload.js).

import { ApiError } from "./api.js";

export class Backoff {
  constructor(name) {
    this.name = name;
    this.until = 0; // performance.now() before which nothing is sent
    this.deferred = 0; // how often the server asked to wait (test hook and diagnostics)
  }

  /** May the next request go now? */
  ready() {
    return performance.now() >= this.until;
  }

  /** Note a failed request; true when the server asked to slow down. */
  note(err) {
    if (!(err instanceof ApiError) || !(err.status === 503 || err.status === 429)) return false;
    const seconds = err.retryAfter || 5;
    // Two requests in flight can be refused with different waits and answered in any order:
    // a shorter wait answered later must not cut the longer one short.
    this.until = Math.max(this.until, performance.now() + seconds * 1000);
    this.deferred += 1;
    return true;
  }
}

// One per kind of periodic request on this page, visible to tests as window.__invigilBackoff.
export const backoffs = {};
export function backoffFor(name) {
  if (!backoffs[name]) backoffs[name] = new Backoff(name);
  globalThis.__invigilBackoff = backoffs;
  return backoffs[name];
}
