import assert from "node:assert/strict";
import { test } from "node:test";

import { clampShare, DutyCycle, sleepAfter } from "../../static/socialgrid/worker/throttle.js";

test("at full share it never sleeps", () => {
  assert.equal(sleepAfter(250, 1), 0);
});

test("the sleep makes the stretch busy for the share of its length", () => {
  for (const share of [0.1, 0.25, 0.5, 0.9]) {
    const ran = 200;
    const slept = sleepAfter(ran, share);
    assert.ok(Math.abs(ran / (ran + slept) - share) < 1e-12, `share ${share}`);
  }
  assert.equal(sleepAfter(100, 0.5), 100);
  assert.equal(sleepAfter(100, 0.25), 300);
});

test("a share outside (0, 1] is brought back into it", () => {
  assert.equal(clampShare(2), 1);
  assert.equal(clampShare(0), 0.01);
  assert.equal(clampShare(-1), 0.01);
  assert.equal(clampShare("0.5"), 0.5);
  assert.equal(clampShare(undefined), 1);
});

test("CPU time counts the busy stretches and leaves the sleeps (and their overrun) out", () => {
  const cycle = new DutyCycle(0.5, 0);
  assert.equal(cycle.pause(100), 100); // ran 0..100, sleep 100
  cycle.resume(230); // the sleep overran by 30 ms
  assert.equal(cycle.pause(280), 50); // ran 230..280
  cycle.resume(330);
  assert.equal(cycle.stop(340), 160); // 100 + 50 + 10
});

test("a new share applies from the next pause", () => {
  const cycle = new DutyCycle(1, 0);
  assert.equal(cycle.pause(100), 0);
  cycle.setShare(0.2);
  cycle.resume(100);
  assert.equal(cycle.pause(200), 400);
});
