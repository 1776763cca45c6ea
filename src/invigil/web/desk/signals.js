// Integrity signals while the candidate is recorded: each becomes a client event.

export class Signals {
  /** @param {(kind:string, data:object)=>void} emit */
  constructor(emit) {
    this.emit = emit;
    this.active = false;
    this.blurAt = null;
    this.hiddenAt = null;
    this.fsExitAt = null;
    this.offlineAt = null;
    this.extended = typeof screen.isExtended === "boolean" ? screen.isExtended : null;
    this.handlers = [];
    this.timer = null;
  }

  _on(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    this.handlers.push([target, type, fn, opts]);
  }

  start() {
    if (this.active) return;
    this.active = true;
    const now = () => Date.now();
    this._on(window, "blur", () => {
      this.blurAt = now();
      this.emit("focus_lost", {});
    });
    this._on(window, "focus", () => {
      if (this.blurAt === null) return;
      this.emit("focus_back", { duration_ms: now() - this.blurAt });
      this.blurAt = null;
    });
    this._on(document, "visibilitychange", () => {
      if (document.visibilityState === "hidden") {
        this.hiddenAt = now();
        this.emit("visibility_hidden", {});
      } else if (this.hiddenAt !== null) {
        this.emit("visibility_visible", { duration_ms: now() - this.hiddenAt });
        this.hiddenAt = null;
      }
    });
    this._on(document, "fullscreenchange", () => {
      if (document.fullscreenElement) {
        const data = this.fsExitAt === null ? {} : { duration_ms: now() - this.fsExitAt };
        this.fsExitAt = null;
        this.emit("fullscreen_enter", data);
      } else {
        this.fsExitAt = now();
        this.emit("fullscreen_exit", {});
      }
    });
    const key = (e) => {
      const k = e.key || "";
      if (k === "PrintScreen" || e.code === "PrintScreen") {
        this.emit("screenshot_key", { key: "PrintScreen", type: e.type });
      } else if ((e.metaKey || e.getModifierState?.("OS")) && e.shiftKey && /^s$/i.test(k)) {
        this.emit("screenshot_key", { key: "Win+Shift+S", type: e.type });
      } else if (e.metaKey && e.shiftKey && /^[345]$/.test(k)) {
        this.emit("screenshot_key", { key: `Cmd+Shift+${k}`, type: e.type });
      }
    };
    // PrintScreen often reaches the page only as keyup.
    this._on(window, "keyup", key, true);
    this._on(window, "keydown", (e) => e.key !== "PrintScreen" && key(e), true);
    for (const type of ["copy", "cut", "paste"]) {
      this._on(document, type, (e) => {
        const target = e.target && e.target.tagName ? e.target.tagName.toLowerCase() : "";
        this.emit("copy_paste", { action: type, target });
      });
    }
    this._on(document, "contextmenu", (e) => {
      e.preventDefault();
      this.emit("context_menu", {});
    });
    this._on(window, "offline", () => {
      this.offlineAt = now();
      this.emit("offline", {});
    });
    this._on(window, "online", () => {
      const data = this.offlineAt === null ? {} : { duration_ms: now() - this.offlineAt };
      this.offlineAt = null;
      this.emit("online", data);
    });
    if (navigator.mediaDevices) {
      this._on(navigator.mediaDevices, "devicechange", async () => {
        let devices = [];
        try {
          devices = await navigator.mediaDevices.enumerateDevices();
        } catch {
          /* ignore */
        }
        this.emit("device_change", {
          cameras: devices.filter((d) => d.kind === "videoinput").length,
          microphones: devices.filter((d) => d.kind === "audioinput").length,
        });
      });
    }
    const checkScreens = () => {
      if (typeof screen.isExtended !== "boolean") return;
      if (screen.isExtended && this.extended !== true) this.emit("second_screen", { extended: true });
      else if (!screen.isExtended && this.extended === true) this.emit("second_screen", { extended: false });
      this.extended = screen.isExtended;
    };
    if (this.extended) this.emit("second_screen", { extended: true, at_start: true });
    if (typeof screen.addEventListener === "function") this._on(screen, "change", checkScreens);
    this.timer = setInterval(checkScreens, 2000);
  }

  /** Watch a media track: an ended camera, microphone or screen share is reported. */
  watchTrack(track, kind, onEnded) {
    track.addEventListener("ended", () => {
      if (this.active) this.emit("track_ended", { kind, track: track.kind, label: track.label.slice(0, 80) });
      if (onEnded) onEnded(track);
    });
  }

  stop() {
    this.active = false;
    clearInterval(this.timer);
    for (const [t, type, fn, opts] of this.handlers) t.removeEventListener(type, fn, opts);
    this.handlers = [];
  }
}
