// The WebSocket to the server, reopened with exponential backoff and jitter when it drops.
//
// Events: "open" (send hello now), "message" (detail: the parsed JSON object), and "drop"
// (detail: {code, reason, fatal, retryIn}): the socket closed; unless fatal, it reopens by
// itself after retryIn ms. The backoff restarts at 1 s once settled() says the server
// accepted the session, not merely when the socket opened: a server that opens and then
// closes straight away is retried ever more slowly too.

const OPEN = 1; // WebSocket.OPEN
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 60_000;

// Close codes after which retrying cannot help (docs/protocol.md, "Close codes").
const FATAL = new Map([
  [4000, "This version of the volunteer client is no longer supported; reload the page."],
  [4001, "Sign in or choose a project to compute for."],
  [4003, "This computer or account may not compute here."],
  [4004, "This project is unknown or not accepting work."],
]);

// 1 s doubling to 60 s, then times a random factor in [0.5, 1.5) so that hosts dropped
// together by a server restart do not come back together.
export function reconnectDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, attempt));
  return base * (0.5 + random());
}

export class Connection extends EventTarget {
  constructor(url, { WebSocket, setTimeout, clearTimeout, random = Math.random }) {
    super();
    this.url = url;
    this.env = { WebSocket, setTimeout, clearTimeout, random };
    this.socket = null;
    this.failures = 0;
    this.retryTimer = null;
    this.wanted = false;
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === OPEN;
  }

  open() {
    this.wanted = true;
    if (!this.socket && !this.retryTimer) this.connect();
  }

  settled() {
    this.failures = 0;
  }

  send(message) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  close() {
    this.wanted = false;
    this.env.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, "stopped");
  }

  connect() {
    this.retryTimer = null;
    let socket;
    try {
      socket = new this.env.WebSocket(this.url);
    } catch (error) {
      this.dropped(1006, String(error.message || error));
      return;
    }
    this.socket = socket;
    socket.onopen = () => this.dispatchEvent(new Event("open"));
    socket.onmessage = (event) => this.received(event.data);
    // A failed socket also closes; "close" is the one place to react.
    socket.onclose = (event) => {
      if (this.socket === socket) this.dropped(event.code, event.reason);
    };
  }

  received(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not ours to answer: the protocol has no client-side error message
    }
    if (message && typeof message === "object") {
      this.dispatchEvent(new CustomEvent("message", { detail: message }));
    }
  }

  dropped(code, reason) {
    this.socket = null;
    const fatal = FATAL.get(code);
    let retryIn = null;
    if (this.wanted && !fatal) {
      retryIn = reconnectDelay(this.failures++, this.env.random);
      this.retryTimer = this.env.setTimeout(() => this.connect(), retryIn);
    }
    if (fatal) this.wanted = false;
    const detail = { code, reason: fatal || reason || "", fatal: Boolean(fatal), retryIn };
    this.dispatchEvent(new CustomEvent("drop", { detail }));
  }
}
