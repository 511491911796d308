// VolunteerClient: this browser as a volunteer host, speaking docs/protocol.md.
//
// It keeps each of `cores` workers busy with one task and about one more waiting, reports
// progress, results and errors, and carries its work across dropped connections (welcome.
// resume) and page reloads (unacknowledged results in localStorage). More work is asked for
// on the result that brings the buffer down to half (result.request, answered in its ack),
// with a request of its own only when there is no result to send.
//
// Events (CustomEvent detail in brackets):
//   state    {state, retryAt, reason}  idle | connecting | running | waiting | paused |
//                                      finishing | stopped | reconnecting (retryAt: when, in
//                                      env.now()); waiting: running, but the server had no
//                                      work and nothing is held (retryAt: the next ask)
//   task     {action, replica, name, fraction}  action: added (assigned), started (on a
//            worker), progress, done (computed; the outcome awaits the server's ack),
//            stopped (paused; back in the queue), removed (acknowledged, cancelled, dropped)
//   credit   {total, amount, userTotal}
//   stats    {done, running, queued, unacknowledged}
//   notice   {level, text}
//   protocol-error {code, message, replica}
import { Connection } from "./connection.js";
import { browserEnvironment } from "./environment.js";
import { WorkerPool } from "./pool.js";
import { RequestPacer, tasksWanted } from "./requests.js";
import { addDone, loadDone, loadIdentity, PendingResults, saveIdentity } from "./storage.js";
import { fitOutcome, TaskBook } from "./tasks.js";
import { clampShare } from "./throttle.js";

const PROTOCOL_VERSION = 1;
const PROGRESS_EVERY_MS = 10_000; // the protocol asks for "at most a few times a minute"
const TICK_MS = 1000;
const RETRY_ERROR_MS = 5000;
// An outcome not acknowledged this long after sending is sent again (a rate_limited or
// server_error answer may not say which message it refused).
const ACK_TIMEOUT_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Until welcome says otherwise: the server's defaults.
const DEFAULT_LIMITS = {
  max_message_bytes: 1024 * 1024 + 4096,
  max_in_flight: 2,
  heartbeat_seconds: 30,
  messages_per_second: 20,
};

// Server error codes for a replica, by what the client does about them.
const GONE = new Set([
  "not_in_progress",
  "lease_expired",
  "not_yours",
  "unknown_replica",
  "bad_lease",
]);
const TRY_AGAIN = new Set(["rate_limited", "server_error"]);
const REFUSED = new Set(["output_too_large", "bad_cpu_time"]); // report an error instead

export class VolunteerClient extends EventTarget {
  constructor({ url, project = null, cores = 1, cpuShare = 1, pauseWhenHidden = false, env }) {
    super();
    this.env = env || browserEnvironment();
    this.project = project || null;
    this.mode = "idle"; // what the volunteer asked for: idle, running, paused, finishing, stopped
    this.resumeMode = "running";
    this.ready = false; // the server welcomed us on the current socket
    this.retryAt = null;
    this.stopReason = null;
    this.limits = DEFAULT_LIMITS;
    this.requests = new RequestPacer();
    this.lastSentAt = 0;
    // Messages wait here when sending them now would exceed the server's rate (see send).
    this.outbox = [];
    this.outboxTimer = null;
    this.tokens = 0;
    this.tokensAt = 0;
    this.ticker = null;
    this.host = null; // the identity the server welcomed
    this.done = 0; // results of this host acknowledged, on this page and before it
    this.credit = 0;
    this.dry = false; // the last answer to a request held no task, and none is held
    this.pauseWhenHidden = pauseWhenHidden;
    this.hiddenPaused = false;
    this.lastState = null;

    this.book = new TaskBook(new PendingResults(this.env.storage));
    this.pool = new WorkerPool({
      size: clampCores(cores),
      share: clampShare(cpuShare),
      createWorker: this.env.createWorker,
      onProgress: (replica, fraction) => this.onProgress(replica, fraction),
      onOutcome: (replica, outcome) => this.onOutcome(replica, outcome),
    });
    this.connection = new Connection(url, this.env);
    this.connection.addEventListener("open", () => this.sendHello());
    this.connection.addEventListener("message", (event) => this.onMessage(event.detail));
    this.connection.addEventListener("drop", (event) => this.onDrop(event.detail));
    if (this.env.document) {
      this.env.document.addEventListener("visibilitychange", () => this.onVisibility());
    }
  }

  get state() {
    if (["idle", "stopped", "paused"].includes(this.mode)) return this.mode;
    if (!this.ready) return this.retryAt === null ? "connecting" : "reconnecting";
    if (this.mode === "running" && this.dry && this.book.size === 0) return "waiting";
    return this.mode;
  }

  // --- controls ---------------------------------------------------------------------------

  async start() {
    if (this.mode === "paused") return this.resume();
    if (this.mode === "finishing") this.mode = "running";
    if (this.mode === "running") return this.pumpAndShow();
    this.mode = "running";
    this.stopReason = null;
    this.retryAt = null;
    this.changed();
    this.capabilities = await (this.capabilitiesPromise ||= this.env.hostCapabilities());
    if (this.mode !== "stopped") this.connection.open();
  }

  // Stop computing but keep the leases (and the connection, so they stay ours).
  pause() {
    if (this.mode !== "running" && this.mode !== "finishing") return;
    this.resumeMode = this.mode;
    this.mode = "paused";
    this.hiddenPaused = false;
    this.stopRunning();
    this.changed();
  }

  resume() {
    if (this.mode !== "paused") return;
    this.mode = this.resumeMode;
    this.hiddenPaused = false;
    this.schedule();
    this.pumpAndShow();
    this.stopWhenFinished();
  }

  // Ask for nothing more; compute what is held (a leased task left alone would only time
  // out on the server), report it, then stop.
  finishThenStop() {
    if (!["running", "paused", "finishing"].includes(this.mode)) return;
    this.mode = "finishing";
    this.hiddenPaused = false;
    this.schedule();
    this.changed();
    this.stopWhenFinished();
  }

  setCores(cores) {
    this.pool.setSize(clampCores(cores));
    this.schedule();
    this.pump();
  }

  setCpuShare(share) {
    this.pool.setShare(clampShare(share));
  }

  setPauseWhenHidden(on) {
    this.pauseWhenHidden = Boolean(on);
    this.onVisibility();
  }

  // --- the server's messages --------------------------------------------------------------

  onMessage(message) {
    const handlers = {
      welcome: this.onWelcome,
      assign: this.onAssign,
      ack: this.onAck,
      cancel: this.onCancel,
      credit: this.onCredit,
      notice: this.onNotice,
      membership: this.onMembership,
      error: this.onServerError,
    };
    const handler = handlers[message.type];
    if (handler) handler.call(this, message);
  }

  onWelcome(welcome) {
    this.ready = true;
    this.retryAt = null;
    this.connection.settled();
    saveIdentity(this.env.storage, welcome.host, welcome.host_token);
    this.host = welcome.host;
    this.done = loadDone(this.env.storage, welcome.host);
    this.emitStats();
    this.limits = { ...DEFAULT_LIMITS, ...welcome.limits };
    this.requests.reset();
    const { added, resend, dropped } = this.book.resume(welcome.resume || []);
    for (const record of dropped) this.forget(record);
    for (const record of added) this.taskEvent("added", record);
    // A request rides on the last result sent again: the server has the others by then, so
    // its count of what this host holds is right.
    const rider = resend.findLast((record) => record.outcome.type === "result");
    for (const record of resend) this.sendOutcome(record, record === rider);
    const credit = welcome.credit || {};
    this.setCredit(credit.host_total, 0, credit.user_total);
    this.env.clearInterval(this.ticker);
    this.ticker = this.env.setInterval(() => this.tick(), TICK_MS);
    this.schedule();
    this.pumpAndShow();
    this.stopWhenFinished();
  }

  onAssign(assign) {
    const tasks = assign.tasks || [];
    this.requests.answered(this.env.now(), tasks.length, assign.retry_after);
    this.dry = tasks.length === 0;
    for (const task of tasks) {
      const record = this.book.add(task);
      if (record) this.taskEvent("added", record);
    }
    this.schedule();
    this.pump();
    this.changed();
  }

  onAck(ack) {
    // A result that asked for more work: its ack answers the request as an assign would.
    // The tasks go in first, so that finishing does not stop with them leased and unrun.
    if ("tasks" in ack) this.onAssign(ack);
    this.acknowledged(ack);
  }

  acknowledged(ack) {
    const record = this.book.get(ack.replica);
    if (!record) return;
    if (ack.of === "progress") {
      if (ack.deadline) record.task.deadline = ack.deadline;
      return;
    }
    if (record.state !== "finished") return;
    this.book.remove(ack.replica);
    if (ack.of === "result") this.done = addDone(this.env.storage, this.host);
    this.taskEvent("removed", record);
    this.pump();
    this.stopWhenFinished();
  }

  onCancel(cancel) {
    for (const replica of cancel.replicas || []) {
      const record = this.book.remove(replica);
      if (record) this.forget(record);
    }
    this.schedule();
    this.pump();
    this.stopWhenFinished();
  }

  onCredit(credit) {
    this.setCredit(credit.host_total, credit.amount, credit.user_total);
  }

  // The volunteer changed their membership of a project (on this or another page): obey it
  // at once. Only this page's project concerns this client.
  onMembership({ project, state, no_more_work: noMoreWork }) {
    if (project !== this.project) return;
    this.emit("membership", { state, noMoreWork });
    if (state === "left") return this.halt("You left this project.");
    if (state === "paused") {
      this.pause();
      this.accountPaused = this.mode === "paused";
      return;
    }
    if (this.accountPaused) {
      this.accountPaused = false;
      this.resume();
    }
    if (noMoreWork) this.finishThenStop();
  }

  onNotice(notice) {
    this.emit("notice", { level: notice.level, text: notice.text });
  }

  onServerError(error) {
    const { code, message, replica } = error;
    this.emit("protocol-error", { code, message, replica });
    const record = replica == null ? null : this.book.get(replica);
    const now = this.env.now();
    if (record && GONE.has(code)) {
      this.book.remove(replica);
      this.forget(record);
      this.schedule();
      this.pump();
      this.stopWhenFinished();
    } else if (record && REFUSED.has(code) && record.outcome && record.outcome.type === "result") {
      this.book.finish(record, fitOutcome({ type: "error", reason: String(message) }));
      this.sendOutcome(record);
    } else if (TRY_AGAIN.has(code)) {
      if (record && record.state === "finished") record.resendAt = now + RETRY_ERROR_MS;
      else if (!record) this.requests.backOff(now, RETRY_ERROR_MS);
    }
  }

  // --- the connection ---------------------------------------------------------------------

  sendHello() {
    // A new socket: the server's bucket for it starts full.
    this.clearOutbox();
    this.tokens = this.pace().burst;
    this.tokensAt = this.env.now();
    const { host, hostToken } = loadIdentity(this.env.storage);
    const hello = {
      type: "hello",
      v: PROTOCOL_VERSION,
      host: UUID.test(host || "") ? host : null,
      host_token: hostToken || null,
      capabilities: this.capabilities,
    };
    if (this.project) hello.project = this.project;
    this.send(hello);
  }

  onDrop({ fatal, reason, retryIn }) {
    this.ready = false;
    // What waited to be sent is sent again, or not needed, after the next welcome.
    this.clearOutbox();
    this.env.clearInterval(this.ticker);
    this.ticker = null;
    if (fatal) {
      this.emit("notice", { level: "warning", text: reason });
      this.halt(reason);
      return;
    }
    // The workers carry on: results wait in the book for the next welcome.
    this.retryAt = retryIn === null ? null : this.env.now() + retryIn;
    this.changed();
  }

  // Within the server's rate (limits.messages_per_second, which it enforces with a burst of
  // twice that): short tasks can finish faster than that, and a message the server refuses
  // as rate_limited costs a resend and a pause. A message over the pace waits its turn, in
  // order, instead.
  send(message) {
    this.outbox.push(message);
    this.sendOutbox();
  }

  pace() {
    const perSecond = Number(this.limits.messages_per_second) || DEFAULT_LIMITS.messages_per_second;
    return { rate: Math.max(1, perSecond * 0.9), burst: Math.max(1, perSecond) };
  }

  sendOutbox() {
    const now = this.env.now();
    const { rate, burst } = this.pace();
    this.tokens = Math.min(burst, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    while (this.outbox.length && this.tokens >= 1) {
      if (!this.connection.send(this.outbox.shift())) {
        this.clearOutbox(); // not connected: the next welcome brings back what matters
        return;
      }
      this.tokens -= 1;
      this.lastSentAt = now;
    }
    if (this.outbox.length && this.outboxTimer === null) {
      const wait = Math.ceil(((1 - this.tokens) / rate) * 1000);
      this.outboxTimer = this.env.setTimeout(() => {
        this.outboxTimer = null;
        this.sendOutbox();
      }, wait);
    }
  }

  clearOutbox() {
    this.outbox = [];
    if (this.outboxTimer !== null) this.env.clearTimeout(this.outboxTimer);
    this.outboxTimer = null;
  }

  tick() {
    const now = this.env.now();
    for (const record of this.book.inState("finished")) {
      if (record.resendAt && now >= record.resendAt) this.sendOutcome(record, true);
    }
    this.pump();
    if (now - this.lastSentAt >= this.limits.heartbeat_seconds * 1000) {
      this.send({ type: "heartbeat" });
    }
  }

  pump() {
    const n = this.claimRequest();
    if (n > 0) this.send({ type: "request", n });
  }

  // How many tasks to ask for now (0: none); a number returned is the outstanding request
  // from then on, whichever message carries it.
  claimRequest() {
    const now = this.env.now();
    if (this.mode !== "running" || !this.ready || !this.requests.due(now)) return 0;
    const n = tasksWanted(this.pool.size, this.limits.max_in_flight, this.book.held);
    if (n > 0) this.requests.sent(now);
    return n;
  }

  pumpAndShow() {
    this.pump();
    this.changed();
  }

  // --- the workers ------------------------------------------------------------------------

  schedule() {
    if (this.mode !== "running" && this.mode !== "finishing") return;
    let record;
    while (this.pool.free > 0 && (record = this.book.nextQueued())) {
      this.book.start(record);
      record.progressSentAt = this.env.now();
      this.pool.run(record.replica, record.task);
      this.taskEvent("started", record);
    }
  }

  onProgress(replica, fraction) {
    const record = this.book.get(replica);
    if (!record || record.state !== "running") return;
    record.fraction = Math.min(1, Math.max(0, Number(fraction) || 0));
    this.taskEvent("progress", record);
    const now = this.env.now();
    if (this.ready && now - record.progressSentAt >= PROGRESS_EVERY_MS) {
      record.progressSentAt = now;
      const { lease } = record.task;
      this.send({ type: "progress", replica, lease, fraction: record.fraction });
    }
  }

  onOutcome(replica, outcome) {
    const record = this.book.get(replica);
    if (!record || record.state !== "running") return;
    this.book.finish(record, fitOutcome(outcome, this.limits.max_message_bytes));
    this.taskEvent("done", record);
    this.sendOutcome(record, true);
    this.schedule();
    this.pump();
  }

  // Sent now if connected; otherwise the next welcome lists it and it is sent then. With
  // `ride`, a result asks for the work the buffer lacks (only results may: errors cannot).
  sendOutcome(record, ride = false) {
    if (!this.ready) return;
    record.resendAt = this.env.now() + ACK_TIMEOUT_MS;
    const { type, ...fields } = record.outcome;
    const message = { type, replica: record.replica, lease: record.task.lease, ...fields };
    const n = ride && type === "result" ? this.claimRequest() : 0;
    if (n > 0) message.request = n;
    this.send(message);
  }

  // Running tasks go back to the queue (their leases stay ours until they expire).
  stopRunning() {
    for (const replica of this.pool.stopAll()) {
      const record = this.book.get(replica);
      this.book.requeue(record);
      this.taskEvent("stopped", record);
    }
  }

  // A record that left the book without being acknowledged.
  forget(record) {
    if (record.state === "running") this.pool.stop(record.replica);
    this.taskEvent("removed", record);
  }

  stopWhenFinished() {
    if (this.mode === "finishing" && this.book.size === 0) this.halt(null);
  }

  halt(reason) {
    this.mode = "stopped";
    this.stopReason = reason;
    this.stopRunning();
    this.pool.close();
    this.connection.close();
    this.env.clearInterval(this.ticker);
    this.ticker = null;
    this.ready = false;
    this.retryAt = null;
    this.changed();
  }

  onVisibility() {
    const hidden = Boolean(this.env.document) && this.env.document.visibilityState === "hidden";
    if (hidden && this.pauseWhenHidden && ["running", "finishing"].includes(this.mode)) {
      this.pause();
      this.hiddenPaused = true;
    } else if (this.hiddenPaused && (!hidden || !this.pauseWhenHidden)) {
      this.resume();
    }
  }

  // --- events -----------------------------------------------------------------------------

  setCredit(total, amount, userTotal = null) {
    if (typeof total === "number") this.credit = total;
    this.emit("credit", { total: this.credit, amount, userTotal });
  }

  taskEvent(action, record) {
    const { replica, fraction } = record;
    this.emit("task", { action, replica, name: record.task.name || `#${replica}`, fraction });
    if (action !== "progress") this.emitStats();
    // The last task held going (or a first one coming) can start or end "waiting".
    if (action === "removed" || action === "added") this.changed();
  }

  emitStats() {
    this.emit("stats", {
      done: this.done,
      running: this.book.inState("running").length,
      queued: this.book.inState("queued").length,
      unacknowledged: this.book.inState("finished").length,
    });
  }

  changed() {
    const state = this.state;
    const retryAt =
      state === "reconnecting" ? this.retryAt : state === "waiting" ? this.requests.notBefore : null;
    if (this.lastState && this.lastState.state === state && this.lastState.retryAt === retryAt) {
      return;
    }
    this.lastState = { state, retryAt };
    this.emit("state", { state, retryAt, reason: this.stopReason });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function clampCores(cores) {
  return Math.min(256, Math.max(1, Math.floor(Number(cores)) || 1));
}
