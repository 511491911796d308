// The page's side of the runner workers: at most `size` tasks at once, one per worker.
//
// A worker that finishes a task is kept for the next one (it keeps its verified kernels);
// stopping a task terminates its worker, the only way to interrupt a kernel mid-loop.
// Outcomes are {type: "result", output, cpu_time} or {type: "error", reason}, shaped as the
// protocol messages that report them.

export class WorkerPool {
  constructor({ size, share, createWorker, onProgress, onOutcome }) {
    this.size = size;
    this.share = share;
    this.createWorker = createWorker;
    this.onProgress = onProgress;
    this.onOutcome = onOutcome;
    this.idle = [];
    this.busy = new Map(); // replica -> worker
  }

  get free() {
    return Math.max(0, this.size - this.busy.size);
  }

  run(replica, task) {
    const worker = this.idle.pop() || this.createWorker(new URL("./runner.js", import.meta.url));
    this.busy.set(replica, worker);
    worker.onmessage = (event) => this.received(replica, worker, event.data);
    worker.onerror = (event) => {
      if (event.preventDefault) event.preventDefault();
      this.crashed(replica, worker, event.message);
    };
    worker.postMessage({ task: { app: task.app, input: task.input }, share: this.share });
  }

  stop(replica) {
    const worker = this.busy.get(replica);
    if (!worker) return false;
    this.busy.delete(replica);
    worker.terminate();
    return true;
  }

  stopAll() {
    const stopped = [...this.busy.keys()];
    for (const replica of stopped) this.stop(replica);
    return stopped;
  }

  // Fewer cores: tasks running on the extra workers finish, no new ones start there.
  setSize(size) {
    this.size = size;
    while (this.idle.length && this.idle.length + this.busy.size > size) {
      this.idle.pop().terminate();
    }
  }

  setShare(share) {
    this.share = share;
    for (const worker of this.busy.values()) worker.postMessage({ share });
  }

  close() {
    this.stopAll();
    for (const worker of this.idle.splice(0)) worker.terminate();
  }

  received(replica, worker, data) {
    if (this.busy.get(replica) !== worker) return; // stopped in the meantime
    if ("progress" in data) {
      this.onProgress(replica, data.progress);
      return;
    }
    this.busy.delete(replica);
    if (this.idle.length + this.busy.size < this.size) this.idle.push(worker);
    else worker.terminate();
    const outcome = data.error
      ? { type: "error", reason: String(data.reason) }
      : { type: "result", output: data.result, cpu_time: data.cpu_time };
    this.onOutcome(replica, outcome);
  }

  crashed(replica, worker, message) {
    if (this.busy.get(replica) !== worker) return;
    this.busy.delete(replica);
    worker.terminate();
    const reason = `the worker failed: ${message || "unknown error"}`;
    this.onOutcome(replica, { type: "error", reason });
  }
}
