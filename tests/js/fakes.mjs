// Stand-ins for the browser pieces the client uses: a clock with timers, localStorage, a
// WebSocket the test plays the server on, and Workers the test finishes by hand.

export class ManualClock {
  constructor(start = 1_000_000) {
    this.now = start;
    this.timers = new Map();
    this.nextId = 1;
  }

  // The timer functions of a client environment, driven by advance().
  env() {
    return {
      now: () => this.now,
      setTimeout: (fn, ms) => this.add(fn, ms, null),
      clearTimeout: (id) => this.timers.delete(id),
      setInterval: (fn, ms) => this.add(fn, ms, ms),
      clearInterval: (id) => this.timers.delete(id),
    };
  }

  add(fn, ms, every) {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.now + Math.max(0, ms || 0), every });
    return id;
  }

  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [id, timer];
      }
      if (next === null) break;
      const [id, timer] = next;
      this.now = timer.at;
      if (timer.every) timer.at += timer.every;
      else this.timers.delete(id);
      timer.fn();
    }
    this.now = end;
  }
}

export class MemoryStorage {
  constructor(entries = {}) {
    this.map = new Map(Object.entries(entries));
  }

  getItem(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }

  setItem(key, value) {
    this.map.set(key, String(value));
  }

  removeItem(key) {
    this.map.delete(key);
  }
}

export class FakeWebSocket {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.instances.push(this);
  }

  static get last() {
    return FakeWebSocket.instances.at(-1);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code) {
    this.readyState = 3;
    this.closedWith = code;
  }

  // The server's side.
  accept() {
    this.readyState = 1;
    this.onopen({});
  }

  deliver(message) {
    this.onmessage({ data: JSON.stringify(message) });
  }

  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose({ code, reason });
  }

  ofType(type) {
    return this.sent.filter((message) => message.type === type);
  }
}

export class FakeWorker {
  constructor(url) {
    this.url = String(url);
    this.posted = [];
    this.terminated = false;
  }

  postMessage(message) {
    this.posted.push(message);
  }

  terminate() {
    this.terminated = true;
  }

  // The runner's side.
  reply(data) {
    this.onmessage({ data });
  }
}

export const LEASE = "0123456789abcdef0123456789abcdef";
export const HOST = "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f";

export function makeTask(replica, extra = {}) {
  return {
    replica,
    workunit: replica,
    name: `tile-${replica}`,
    project: "mandelbrot",
    app: {
      name: "mandelbrot",
      version: 1,
      kernel_url: "/kernels/1/aa.js",
      kernel_sha256: "a".repeat(64),
      wasm_url: null,
      wasm_sha256: null,
    },
    input: { n: replica },
    lease: LEASE,
    deadline: "2030-01-01T00:00:00Z",
    ...extra,
  };
}

export function welcome(extra = {}) {
  return {
    type: "welcome",
    v: 1,
    host: HOST,
    host_token: "signed-token",
    user: null,
    limits: {
      max_message_bytes: 1048576 + 4096,
      messages_per_second: 20,
      max_in_flight: 4,
      heartbeat_seconds: 30,
    },
    resume: [],
    credit: { host_total: 12.5, user_total: null },
    ...extra,
  };
}
