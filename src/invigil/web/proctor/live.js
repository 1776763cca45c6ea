// The console's live connection: one WebSocket, reconnecting with backoff; on every (re)connect
// it subscribes with the last event seq it holds per attempt, so the server replays exactly
// what was missed from the event log before streaming live again.

export class LiveConnection {
  constructor({ token, onMessage, onState, cursor }) {
    this.token = token;
    this.onMessage = onMessage;
    this.onState = onState || (() => {});
    this.cursor = cursor; // () => ({attempt_id: seq})
    this.rooms = [];
    this.ws = null;
    this.closed = false;
    this.retry = 0;
    this.pingTimer = null;
  }

  subscribe(rooms) {
    this.rooms = rooms;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.sendSubscribe();
    else this.connect();
  }

  sendSubscribe() {
    this.ws.send(JSON.stringify({ type: "subscribe", rooms: this.rooms, since: this.cursor() }));
  }

  connect() {
    if (this.closed) return;
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/staff/ws`);
    this.ws = ws;
    this.onState("connecting");
    ws.onopen = () => {
      ws.send(JSON.stringify({ token: this.token }));
    };
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg.type === "hello") {
        this.retry = 0;
        this.onState("online");
        if (this.rooms.length) this.sendSubscribe();
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => {
          if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
        }, 20000);
      }
      this.onMessage(msg);
    };
    ws.onclose = (e) => {
      clearInterval(this.pingTimer);
      if (this.closed) return;
      if (e.code === 4401) {
        this.onState("unauthorized");
        return;
      }
      this.onState("offline");
      const delay = Math.min(10000, 500 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
    };
  }

  close() {
    this.closed = true;
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close();
  }
}
