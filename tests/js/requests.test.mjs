import assert from "node:assert/strict";
import { test } from "node:test";

import { RequestPacer, tasksWanted } from "../../static/socialgrid/worker/requests.js";

test("it wants one running and one waiting task per core, within max_in_flight", () => {
  assert.equal(tasksWanted(2, 8, 0), 4);
  assert.equal(tasksWanted(2, 8, 3), 0);
  assert.equal(tasksWanted(2, 8, 2), 2);
  assert.equal(tasksWanted(8, 4, 1), 3);
  assert.equal(tasksWanted(1, 8, 5), 0);
  assert.equal(tasksWanted(1, 1, 0), 1);
  assert.equal(tasksWanted(1, 1, 1), 0);
  assert.equal(tasksWanted(256, 1000, 0), 64);
});

test("one request at a time", () => {
  const pacer = new RequestPacer();
  assert.ok(pacer.due(0));
  pacer.sent(0);
  assert.ok(!pacer.due(1000));
  pacer.answered(1000, 2, null);
  assert.ok(pacer.due(1000));
});

test("retry_after holds the next request back, and an empty assign waits 30 s without one", () => {
  const pacer = new RequestPacer();
  pacer.sent(0);
  pacer.answered(0, 0, 12);
  assert.ok(!pacer.due(11_999));
  assert.ok(pacer.due(12_000));
  pacer.sent(12_000);
  pacer.answered(12_000, 0, null);
  assert.ok(!pacer.due(41_999));
  assert.ok(pacer.due(42_000));
});

test("an unanswered request is given up after a minute", () => {
  const pacer = new RequestPacer();
  pacer.sent(0);
  assert.ok(!pacer.due(59_999));
  assert.ok(pacer.due(60_000));
});

test("backOff clears the pending request and waits", () => {
  const pacer = new RequestPacer();
  pacer.sent(0);
  pacer.backOff(100, 5000);
  assert.ok(!pacer.due(5099));
  assert.ok(pacer.due(5100));
});
