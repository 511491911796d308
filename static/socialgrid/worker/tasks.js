// The client's book of the tasks it holds.
//
// A record goes queued -> running -> finished and leaves the book when the server
// acknowledges its outcome, cancels it, or no longer lists it as leased to this host.
// Pausing puts running records back to queued: kernels keep no checkpoints, so a paused
// task starts again from the beginning. Finished outcomes are also written to storage
// (PendingResults) until acknowledged, and the book starts with those a reload left.

const MAX_REASON = 500; // characters, as the protocol's error.reason
const ENVELOPE_BYTES = 1024; // the rest of a result message, generously

// An outcome the server can take: a reason within its length limit, a sane CPU time, and
// an output that fits in one message (or else an error saying so, which ends the replica
// at once instead of leaving it to time out).
export function fitOutcome(outcome, maxMessageBytes = Infinity) {
  if (outcome.type === "error") {
    return { type: "error", reason: outcome.reason.slice(0, MAX_REASON) };
  }
  const bytes = new TextEncoder().encode(JSON.stringify(outcome.output)).length;
  if (bytes + ENVELOPE_BYTES > maxMessageBytes) {
    return { type: "error", reason: `the output (${bytes} bytes) is larger than a message` };
  }
  const cpuTime = Number.isFinite(outcome.cpu_time) ? Math.max(0, outcome.cpu_time) : 0;
  return { type: "result", output: outcome.output, cpu_time: cpuTime };
}

// progressSentAt and resendAt are the client's clocks for progress reports and re-sending.
function newRecord(task) {
  const fields = { state: "queued", fraction: 0, outcome: null, progressSentAt: 0, resendAt: null };
  return { replica: task.replica, task, ...fields };
}

export class TaskBook {
  constructor(pending) {
    this.pending = pending;
    this.records = new Map();
    for (const { replica, lease, name, outcome } of pending.all()) {
      const record = newRecord({ replica, lease, name });
      Object.assign(record, { state: "finished", fraction: 1, outcome });
      this.records.set(replica, record);
    }
  }

  get size() {
    return this.records.size;
  }

  // The tasks still to compute (queued or running). A finished one is no longer held: its
  // outcome is on its way, and the server leaves a recorded replica out of the host's count
  // of tasks in flight, so the buffer is refilled without waiting for the ack.
  get held() {
    let held = 0;
    for (const record of this.records.values()) if (record.state !== "finished") held += 1;
    return held;
  }

  get(replica) {
    return this.records.get(replica);
  }

  inState(state) {
    return [...this.records.values()].filter((record) => record.state === state);
  }

  // A newly assigned task, or null if the book already has it.
  add(task) {
    if (this.records.has(task.replica)) return null;
    const record = newRecord(task);
    this.records.set(task.replica, record);
    return record;
  }

  // The queued record that has waited longest (Maps keep insertion order).
  nextQueued() {
    for (const record of this.records.values()) if (record.state === "queued") return record;
    return null;
  }

  start(record) {
    record.state = "running";
    record.fraction = 0;
  }

  requeue(record) {
    record.state = "queued";
    record.fraction = 0;
  }

  finish(record, outcome) {
    record.state = "finished";
    record.fraction = 1;
    record.outcome = outcome;
    this.persist(record);
  }

  remove(replica) {
    const record = this.records.get(replica);
    if (!record) return null;
    this.records.delete(replica);
    if (record.state === "finished") this.pending.remove(replica);
    return record;
  }

  // Reconcile with welcome.resume, the replicas the server still leases to this host.
  // Returns the records it added (to be run), the finished ones whose outcome must be sent
  // again, and the ones it dropped: the server no longer expects an answer for those
  // (reported already, timed out, cancelled), so running or re-sending them would be waste.
  resume(tasks) {
    const leased = new Map(tasks.map((task) => [task.replica, task]));
    const dropped = [];
    for (const replica of [...this.records.keys()]) {
      if (!leased.has(replica)) dropped.push(this.remove(replica));
    }
    const added = [];
    const resend = [];
    for (const task of leased.values()) {
      const record = this.records.get(task.replica);
      if (!record) {
        added.push(this.add(task));
        continue;
      }
      record.task = task; // the lease and deadline as the server has them now
      if (record.state === "finished") {
        this.persist(record);
        resend.push(record);
      }
    }
    return { added, resend, dropped };
  }

  persist(record) {
    const { replica, task, outcome } = record;
    this.pending.put({ replica, lease: task.lease, name: task.name, outcome });
  }
}
