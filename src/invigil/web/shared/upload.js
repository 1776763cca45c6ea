// The upload engine shared by the desk and the phone pages.
//
// Every recorded chunk goes to IndexedDB first (bytes, its SHA-256 and the recording's running
// SHA-256 state in one transaction) and is deleted only after the server acknowledged it with
// 201 (stored) or 200 (already held). Uploads run in the background with back-off; a reload or
// crash finds the chunks and the hash state still there and carries on. A recording whose
// recorder is gone (the page was closed) is finalized with the chunks it made; the page starts a
// new recording of the same kind, which the server allows.

import { ApiError } from "./api.js";
import { Sha256, sha256Hex } from "./sha256.js";

const DB_NAME = "invigil-media";
const DB_VERSION = 1;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
    tx.onerror = () => reject(tx.error);
  });
}

export function openMediaDb(name = DB_NAME) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(name, DB_VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      const recs = db.createObjectStore("recordings", { keyPath: "localId" });
      recs.createIndex("owner", "owner");
      db.createObjectStore("chunks", { keyPath: ["localId", "seq"] });
      db.createObjectStore("log", { keyPath: ["localId", "seq"] });
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new Error("IndexedDB blocked by another tab"));
  });
}

function newLocalId() {
  const a = new Uint8Array(8);
  crypto.getRandomValues(a);
  return Date.now().toString(36) + "-" + Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

const RETRYABLE = (err) => err instanceof ApiError && (err.offline || err.status >= 500 || err.status === 429 || err.status === 408);

export class UploadEngine {
  /**
   * @param {object} o
   * @param {object} o.api  client from createApi (bearer token of the candidate or phone)
   * @param {string} o.owner  the attempt id: chunks of another attempt are never sent with this token
   * @param {(e:UploadEngine)=>void} [o.onChange]  progress changed
   * @param {(problem:object)=>void} [o.onProblem]  something the server refused for good
   * @param {(err:ApiError)=>void} [o.onAuthLost]  401: the page must log in again, then call resume()
   */
  constructor({ api, owner, onChange, onProblem, onAuthLost, dbName } = {}) {
    this.api = api;
    this.owner = owner;
    this.onChange = onChange || (() => {});
    this.onProblem = onProblem || (() => {});
    this.onAuthLost = onAuthLost || (() => {});
    this.dbName = dbName || DB_NAME;
    this.db = null;
    this.recs = new Map();
    this.memory = new Map(); // chunks IndexedDB refused (quota): kept here instead
    this.chunkLogMemory = [];
    this.storageProblem = null;
    this.online = navigator.onLine;
    this.paused = false;
    this.closedByServer = false;
    this.closed = false;
    this.backoff = 0;
    this.lastError = null;
    this.lastAckAt = null;
    this._wake = null;
    this._onOnline = () => this.kick();
  }

  async open() {
    this.db = await openMediaDb(this.dbName);
    const tx = this.db.transaction(["recordings", "chunks"], "readwrite");
    const metas = await req(tx.objectStore("recordings").index("owner").getAll(this.owner));
    for (const meta of metas) {
      const keys = meta.finalized
        ? []
        : await req(tx.objectStore("chunks").getAllKeys(IDBKeyRange.bound([meta.localId, 0], [meta.localId, Infinity])));
      if (!meta.stopped && !meta.finalized) {
        // Its recorder belonged to a page that is gone: nothing more will come.
        meta.stopped = true;
        meta.interrupted = true;
        tx.objectStore("recordings").put(meta);
      }
      this.recs.set(meta.localId, this._live(meta, keys.map((k) => k[1])));
    }
    await done(tx);
    addEventListener("online", this._onOnline);
    this._loop();
    this.onChange(this);
    return this;
  }

  _live(meta, pendingSeqs) {
    return {
      meta,
      pending: new Set(pendingSeqs),
      hasher: new Sha256(meta.hash || undefined),
      chain: Promise.resolve(),
      hashFailures: 0,
    };
  }

  close() {
    this.closed = true;
    removeEventListener("online", this._onOnline);
    this.kick();
  }

  /** Wake the upload loop now (network back, new chunk, new token). */
  kick() {
    if (this._wake) this._wake();
  }

  /** After a new login: go on with the new token. */
  resume() {
    this.paused = false;
    this.kick();
  }

  async createRecording(kind, mime, extra = {}) {
    const meta = {
      localId: newLocalId(),
      owner: this.owner,
      kind,
      mime,
      createdAt: new Date().toISOString(),
      recordingId: null,
      nextSeq: 0,
      hash: null,
      producedBytes: 0,
      acked: 0,
      ackedBytes: 0,
      stopped: false,
      finalized: false,
      error: null,
      ...extra,
    };
    await this._putMeta(meta);
    this.recs.set(meta.localId, this._live(meta, []));
    this.onChange(this);
    return meta.localId;
  }

  /** Store one chunk (in order per recording); resolves once it is safe in IndexedDB. */
  addChunk(localId, blob) {
    const rec = this.recs.get(localId);
    if (!rec) return Promise.reject(new Error("unknown recording"));
    rec.chain = rec.chain.then(() => this._store(rec, blob)).catch((err) => {
      this.lastError = err;
      this.onProblem({ kind: rec.meta.kind, reason: "store_failed", message: String(err) });
    });
    return rec.chain;
  }

  async _store(rec, blob) {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    if (!bytes.length) return;
    const seq = rec.meta.nextSeq;
    const sha256 = await sha256Hex(bytes);
    rec.hasher.update(bytes);
    // The in-memory meta changes at once (later transactions then carry it); the chunk, its
    // log line and the meta are written in one transaction.
    Object.assign(rec.meta, {
      nextSeq: seq + 1,
      hash: rec.hasher.state(),
      producedBytes: rec.meta.producedBytes + bytes.length,
      lastChunkAt: new Date().toISOString(),
    });
    const meta = { ...rec.meta };
    const chunk = { localId: meta.localId, seq, data: bytes.buffer, sha256, size: bytes.length };
    const log = { localId: meta.localId, seq, sha256, size: bytes.length, kind: meta.kind, at: meta.lastChunkAt };
    try {
      const tx = this.db.transaction(["chunks", "recordings", "log"], "readwrite");
      tx.objectStore("chunks").put(chunk);
      tx.objectStore("recordings").put(meta);
      tx.objectStore("log").put(log);
      await done(tx);
    } catch (err) {
      // Out of disk quota or storage blocked: keep the chunk in memory so it still uploads.
      this.storageProblem = String(err && err.name ? err.name : err);
      this.memory.set(`${meta.localId}/${seq}`, chunk);
      this.chunkLogMemory.push(log);
    }
    rec.pending.add(seq);
    this.onChange(this);
    this.kick();
  }

  /** No more chunks for this recording: once all are acknowledged it is finalized. */
  async stopRecording(localId) {
    const rec = this.recs.get(localId);
    if (!rec) return;
    await rec.chain;
    await this._update(rec, { stopped: true, stoppedAt: new Date().toISOString() });
    this.kick();
  }

  async _putMeta(meta) {
    const tx = this.db.transaction(["recordings"], "readwrite");
    tx.objectStore("recordings").put({ ...meta });
    await done(tx);
  }

  // --- what the page shows ---------------------------------------------------------------

  recordings() {
    return [...this.recs.values()].map((r) => r.meta);
  }

  /** Per recording: chunks made, acknowledged, waiting, and whether it is finalized. */
  summary() {
    return [...this.recs.values()]
      .sort((a, b) => (a.meta.createdAt < b.meta.createdAt ? -1 : 1))
      .map(({ meta, pending }) => ({
        localId: meta.localId,
        recordingId: meta.recordingId,
        kind: meta.kind,
        produced: meta.nextSeq,
        acked: meta.acked,
        pending: pending.size,
        pendingBytes: Math.max(0, meta.producedBytes - meta.ackedBytes),
        producedBytes: meta.producedBytes,
        stopped: meta.stopped,
        finalized: meta.finalized,
        interrupted: !!meta.interrupted,
        error: meta.error,
      }));
  }

  backlog() {
    let chunks = 0;
    let bytes = 0;
    for (const s of this.summary()) {
      chunks += s.pending;
      bytes += s.pendingBytes;
    }
    return { chunks, bytes };
  }

  /** Everything this page recorded is on the server and finalized. */
  allFinalized() {
    return this.summary().every((s) => s.finalized || s.error);
  }

  /** Every chunk made on this device for this owner (test hook and diagnostics). */
  async chunkLog() {
    const tx = this.db.transaction(["log", "recordings"], "readonly");
    const rows = await req(tx.objectStore("log").getAll());
    const metas = new Map((await req(tx.objectStore("recordings").getAll())).map((m) => [m.localId, m]));
    return rows
      .concat(this.chunkLogMemory)
      .filter((r) => metas.get(r.localId) && metas.get(r.localId).owner === this.owner)
      .map((r) => ({ ...r, recordingId: metas.get(r.localId).recordingId }));
  }

  // --- the loop ------------------------------------------------------------------------------

  _wait(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this._wake = null;
        resolve();
      }, ms);
      this._wake = () => {
        clearTimeout(t);
        this._wake = null;
        resolve();
      };
    });
  }

  async _loop() {
    while (!this.closed) {
      if (this.paused || this.closedByServer) {
        await this._wait(2000);
        continue;
      }
      let progressed = false;
      try {
        progressed = await this._pass();
        if (progressed || !this.online) {
          this.online = true;
          this.backoff = 0;
          this.lastError = null;
          this.onChange(this);
        }
      } catch (err) {
        this.lastError = err;
        if (err instanceof ApiError && err.status === 401) {
          this.paused = true;
          this.onChange(this);
          this.onAuthLost(err);
          continue;
        }
        if (err instanceof ApiError && err.code === "uploads_closed") {
          this.closedByServer = true;
          this.onChange(this);
          continue;
        }
        if (err instanceof ApiError && err.offline) this.online = false;
        this.backoff = Math.min(30000, Math.max(1000, this.backoff * 2));
        this.onChange(this);
        // A loaded server says how long to wait (503/429 Retry-After): never sooner than that.
        const asked = err instanceof ApiError ? err.retryAfter * 1000 : 0;
        await this._wait(Math.max(this.backoff, asked) + Math.random() * 300);
        continue;
      }
      if (!progressed) await this._wait(1000);
    }
  }

  _active() {
    return [...this.recs.values()]
      .filter((r) => r.meta.owner === this.owner && !r.meta.finalized && !r.meta.error)
      .sort((a, b) => (a.meta.createdAt < b.meta.createdAt ? -1 : 1));
  }

  async _pass() {
    const active = this._active();
    for (const rec of active) {
      if (rec.meta.recordingId) continue;
      await rec.chain;
      if (rec.meta.nextSeq === 0) {
        // Nothing recorded yet: no server recording (an empty one could never be finalized).
        if (rec.meta.stopped) await this._update(rec, { finalized: true, empty: true });
        continue;
      }
      const r = await this.api.post("/api/v1/recordings", {
        kind: rec.meta.kind,
        mime: rec.meta.mime,
        started_at: rec.meta.createdAt,
      });
      await this._update(rec, { recordingId: r.recording_id });
      return true;
    }
    const uploading = active.filter((r) => r.meta.recordingId && r.pending.size);
    if (uploading.length) {
      const results = await Promise.allSettled(uploading.map((r) => this._uploadNext(r)));
      const failed = results.find((r) => r.status === "rejected");
      if (failed && !results.some((r) => r.status === "fulfilled")) throw failed.reason;
      return true;
    }
    for (const rec of active) {
      if (rec.meta.recordingId && rec.meta.stopped && !rec.pending.size) {
        await rec.chain;
        if (rec.pending.size) return true;
        await this._finalize(rec);
        return true;
      }
    }
    return false;
  }

  async _chunkData(rec, seq) {
    const mem = this.memory.get(`${rec.meta.localId}/${seq}`);
    if (mem) return mem;
    const tx = this.db.transaction(["chunks"], "readonly");
    return req(tx.objectStore("chunks").get([rec.meta.localId, seq]));
  }

  async _uploadNext(rec) {
    const seq = Math.min(...rec.pending);
    const chunk = await this._chunkData(rec, seq);
    if (!chunk) {
      rec.pending.delete(seq);
      await this._fail(rec, "chunk_lost", { seq });
      return;
    }
    try {
      await this.api.request("PUT", `/api/v1/recordings/${rec.meta.recordingId}/chunks/${seq}`, {
        body: chunk.data,
        headers: { "Content-Type": "application/octet-stream", "X-Chunk-SHA256": chunk.sha256 },
        timeout: 60000,
      });
    } catch (err) {
      if (RETRYABLE(err) || !(err instanceof ApiError) || err.status === 401 || err.code === "uploads_closed") throw err;
      if (err.code === "recording_finalized") {
        await this._dropPending(rec);
        await this._update(rec, { finalized: true });
        return;
      }
      if (err.code === "hash_mismatch" && ++rec.hashFailures < 3) throw err;
      // Refused for good (conflict, too large, unknown recording): say so, keep the bytes.
      await this._fail(rec, err.code, { seq, status: err.status });
      return;
    }
    await this._ack(rec, seq, chunk.size);
  }

  async _ack(rec, seq, size) {
    Object.assign(rec.meta, { acked: rec.meta.acked + 1, ackedBytes: rec.meta.ackedBytes + size });
    rec.pending.delete(seq);
    const tx = this.db.transaction(["chunks", "recordings"], "readwrite");
    tx.objectStore("chunks").delete([rec.meta.localId, seq]);
    tx.objectStore("recordings").put({ ...rec.meta });
    await done(tx);
    this.memory.delete(`${rec.meta.localId}/${seq}`);
    this.lastAckAt = Date.now();
    this.onChange(this);
  }

  async _dropPending(rec) {
    const tx = this.db.transaction(["chunks"], "readwrite");
    tx.objectStore("chunks").delete(IDBKeyRange.bound([rec.meta.localId, 0], [rec.meta.localId, Infinity]));
    await done(tx);
    rec.pending.clear();
  }

  async _finalize(rec) {
    const body = { chunks: rec.meta.nextSeq, sha256: rec.hasher.hex() };
    try {
      await this.api.post(`/api/v1/recordings/${rec.meta.recordingId}/finalize`, body, { timeout: 120000 });
    } catch (err) {
      if (RETRYABLE(err) || !(err instanceof ApiError) || err.status === 401 || err.code === "uploads_closed") throw err;
      if (err.code === "already_finalized") {
        await this._update(rec, { finalized: true, note: "already_finalized" });
        return;
      }
      await this._fail(rec, err.code, { missing: err.body.missing });
      return;
    }
    await this._update(rec, { finalized: true, finalizedAt: new Date().toISOString() });
  }

  async _fail(rec, code, detail) {
    await this._update(rec, { error: code, errorDetail: detail || null });
    this.onProblem({ kind: rec.meta.kind, recordingId: rec.meta.recordingId, reason: code, ...detail });
  }

  async _update(rec, patch) {
    Object.assign(rec.meta, patch);
    await this._putMeta(rec.meta);
    this.onChange(this);
  }
}
