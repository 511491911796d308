import assert from "node:assert/strict";
import { test } from "node:test";

import { PendingResults } from "../../static/socialgrid/worker/storage.js";
import { fitOutcome, TaskBook } from "../../static/socialgrid/worker/tasks.js";
import { makeTask, MemoryStorage } from "./fakes.mjs";

const RESULT = { type: "result", output: { hits: [] }, cpu_time: 1.5 };

function book(storage = new MemoryStorage()) {
  return new TaskBook(new PendingResults(storage));
}

test("a task is added once", () => {
  const tasks = book();
  assert.ok(tasks.add(makeTask(1)));
  assert.equal(tasks.add(makeTask(1)), null);
  assert.equal(tasks.size, 1);
});

test("tasks start in the order they came", () => {
  const tasks = book();
  for (const replica of [3, 1, 2]) tasks.add(makeTask(replica));
  tasks.start(tasks.nextQueued());
  assert.equal(tasks.nextQueued().replica, 1);
  assert.deepEqual(tasks.inState("running").map((r) => r.replica), [3]);
});

test("a paused task goes back to the queue from the beginning", () => {
  const tasks = book();
  const record = tasks.add(makeTask(1));
  tasks.start(record);
  record.fraction = 0.6;
  tasks.requeue(record);
  assert.equal(record.state, "queued");
  assert.equal(record.fraction, 0);
});

test("the tasks held are those still to compute, not the finished ones awaiting an ack", () => {
  const tasks = book();
  for (const replica of [1, 2, 3]) tasks.add(makeTask(replica));
  tasks.start(tasks.get(1));
  assert.equal(tasks.held, 3);
  tasks.finish(tasks.get(1), RESULT);
  assert.equal(tasks.held, 2);
  assert.equal(tasks.size, 3);
});

test("a finished outcome is stored until removed", () => {
  const storage = new MemoryStorage();
  const tasks = book(storage);
  const record = tasks.add(makeTask(7));
  tasks.start(record);
  tasks.finish(record, RESULT);
  const stored = JSON.parse(storage.getItem("socialgrid.results"));
  assert.deepEqual(stored, {
    7: { replica: 7, lease: makeTask(7).lease, name: "tile-7", outcome: RESULT },
  });
  tasks.remove(7);
  assert.equal(storage.getItem("socialgrid.results"), null);
});

test("a new book starts with the outcomes a reload left behind", () => {
  const storage = new MemoryStorage();
  const first = book(storage);
  first.finish(first.add(makeTask(7)), RESULT);
  const second = book(storage);
  const record = second.get(7);
  assert.equal(record.state, "finished");
  assert.deepEqual(record.outcome, RESULT);
  assert.equal(record.task.lease, makeTask(7).lease);
});

test("resume keeps what is still leased, adds what is new and drops the rest", () => {
  const tasks = book();
  const running = tasks.add(makeTask(1));
  tasks.start(running);
  tasks.add(makeTask(2)); // queued
  tasks.finish(tasks.add(makeTask(3)), RESULT); // finished, unacknowledged
  tasks.finish(tasks.add(makeTask(4)), RESULT); // finished, but the server is done with it
  const gone = tasks.add(makeTask(5)); // leased no more
  tasks.start(gone);

  const later = "2031-01-01T00:00:00Z";
  const { added, resend, dropped } = tasks.resume([
    makeTask(1, { deadline: later }),
    makeTask(2),
    makeTask(3),
    makeTask(6),
  ]);
  assert.deepEqual(added.map((r) => r.replica), [6]);
  assert.deepEqual(resend.map((r) => r.replica), [3]);
  assert.deepEqual(dropped.map((r) => [r.replica, r.state]), [[4, "finished"], [5, "running"]]);
  assert.deepEqual([...tasks.records.keys()], [1, 2, 3, 6]);
  assert.equal(tasks.get(1).state, "running");
  assert.equal(tasks.get(1).task.deadline, later);
});

test("resume after a reload re-sends with the lease the server names", () => {
  const storage = new MemoryStorage();
  const first = book(storage);
  first.finish(first.add(makeTask(7)), RESULT);
  const second = book(storage);
  const lease = "f".repeat(32);
  const { resend } = second.resume([makeTask(7, { lease })]);
  assert.equal(resend[0].task.lease, lease);
  assert.equal(JSON.parse(storage.getItem("socialgrid.results"))[7].lease, lease);
});

test("two tabs sharing storage do not overwrite each other's results", () => {
  const storage = new MemoryStorage();
  const left = book(storage);
  const right = book(storage);
  left.finish(left.add(makeTask(1)), RESULT);
  right.finish(right.add(makeTask(2)), RESULT);
  left.remove(1);
  assert.deepEqual(Object.keys(JSON.parse(storage.getItem("socialgrid.results"))), ["2"]);
});

test("storage that is full or damaged does not break the book", () => {
  const full = new MemoryStorage();
  full.setItem = () => {
    throw new Error("QuotaExceededError");
  };
  const tasks = book(full);
  const record = tasks.add(makeTask(1));
  tasks.finish(record, RESULT);
  assert.equal(tasks.get(1).state, "finished");

  const damaged = new MemoryStorage({ "socialgrid.results": "{not json" });
  assert.equal(book(damaged).size, 0);
});

test("fitOutcome keeps reasons within 500 characters and CPU time sane", () => {
  assert.equal(fitOutcome({ type: "error", reason: "x".repeat(900) }).reason.length, 500);
  assert.equal(fitOutcome({ type: "result", output: 1, cpu_time: NaN }).cpu_time, 0);
  assert.equal(fitOutcome({ type: "result", output: 1, cpu_time: -3 }).cpu_time, 0);
  assert.deepEqual(fitOutcome(RESULT, 1_000_000), RESULT);
});

test("fitOutcome turns an output too large for one message into an error", () => {
  const big = { type: "result", output: "é".repeat(600), cpu_time: 1 }; // 1200 bytes in UTF-8
  const fitted = fitOutcome(big, 2000);
  assert.equal(fitted.type, "error");
  assert.match(fitted.reason, /1202 bytes/);
  assert.equal(fitOutcome(big, 3000).type, "result");
});
