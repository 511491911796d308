import assert from "node:assert/strict";
import { test } from "node:test";

import { WorkerPool } from "../../static/socialgrid/worker/pool.js";
import { FakeWorker, makeTask } from "./fakes.mjs";

function pool(size = 2) {
  const workers = [];
  const progress = [];
  const outcomes = [];
  const workerPool = new WorkerPool({
    size,
    share: 0.5,
    createWorker: (url) => {
      const worker = new FakeWorker(url);
      workers.push(worker);
      return worker;
    },
    onProgress: (replica, fraction) => progress.push([replica, fraction]),
    onOutcome: (replica, outcome) => outcomes.push([replica, outcome]),
  });
  return { workerPool, workers, progress, outcomes };
}

test("a task goes to a module worker running runner.js, with the CPU share", () => {
  const { workerPool, workers } = pool();
  workerPool.run(1, makeTask(1));
  assert.match(workers[0].url, /\/worker\/runner\.js$/);
  assert.deepEqual(workers[0].posted, [{ task: { app: makeTask(1).app, input: { n: 1 } }, share: 0.5 }]);
  assert.equal(workerPool.free, 1);
});

test("progress and outcomes come back by replica, and a finished worker is reused", () => {
  const { workerPool, workers, progress, outcomes } = pool();
  workerPool.run(1, makeTask(1));
  workers[0].reply({ progress: 0.5 });
  workers[0].reply({ result: { ok: true }, cpu_time: 2 });
  workers[0].reply({ progress: 0.9 }); // late: ignored
  assert.deepEqual(progress, [[1, 0.5]]);
  assert.deepEqual(outcomes, [[1, { type: "result", output: { ok: true }, cpu_time: 2 }]]);
  workerPool.run(2, makeTask(2));
  assert.equal(workers.length, 1);
});

test("an error from the runner is an error outcome", () => {
  const { workerPool, workers, outcomes } = pool();
  workerPool.run(1, makeTask(1));
  workers[0].reply({ error: true, reason: "kernel hash mismatch" });
  assert.deepEqual(outcomes, [[1, { type: "error", reason: "kernel hash mismatch" }]]);
});

test("a worker that dies is an error outcome and is not reused", () => {
  const { workerPool, workers, outcomes } = pool();
  workerPool.run(1, makeTask(1));
  workers[0].onerror({ message: "out of memory", preventDefault() {} });
  assert.deepEqual(outcomes, [[1, { type: "error", reason: "the worker failed: out of memory" }]]);
  assert.equal(workers[0].terminated, true);
  workerPool.run(2, makeTask(2));
  assert.equal(workers.length, 2);
});

test("stopping a task terminates its worker and silences it", () => {
  const { workerPool, workers, outcomes } = pool();
  workerPool.run(1, makeTask(1));
  assert.equal(workerPool.stop(1), true);
  assert.equal(workers[0].terminated, true);
  workers[0].reply({ result: 1, cpu_time: 1 });
  assert.deepEqual(outcomes, []);
  assert.equal(workerPool.stop(1), false);
});

test("a new share is posted to the busy workers", () => {
  const { workerPool, workers } = pool();
  workerPool.run(1, makeTask(1));
  workerPool.setShare(0.2);
  assert.deepEqual(workers[0].posted.at(-1), { share: 0.2 });
});

test("shrinking lets running tasks finish and then retires their workers", () => {
  const { workerPool, workers } = pool(2);
  workerPool.run(1, makeTask(1));
  workerPool.run(2, makeTask(2));
  workerPool.setSize(1);
  assert.equal(workerPool.free, 0);
  workers[0].reply({ result: 1, cpu_time: 1 });
  assert.equal(workers[0].terminated, true);
  assert.equal(workers[1].terminated, false);
});

test("close terminates busy and idle workers", () => {
  const { workerPool, workers } = pool(2);
  workerPool.run(1, makeTask(1));
  workerPool.run(2, makeTask(2));
  workers[0].reply({ result: 1, cpu_time: 1 });
  workerPool.close();
  assert.ok(workers.every((w) => w.terminated));
});
