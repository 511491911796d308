import assert from "node:assert/strict";
import { test } from "node:test";

import { benchmarkFpops, measureFlops } from "../../static/socialgrid/worker/benchmark.js";
import { FakeWorker, MemoryStorage } from "./fakes.mjs";

test("the loop runs for its budget and gives a plausible figure", () => {
  const start = performance.now();
  const { fpops, checksum } = measureFlops(50, () => performance.now());
  assert.ok(performance.now() - start >= 50);
  assert.ok(fpops > 1e7 && fpops < 1e13, String(fpops));
  assert.ok(Number.isFinite(checksum));
});

test("the figure is measured in a worker once and then read from storage", async () => {
  const storage = new MemoryStorage();
  const workers = [];
  const createWorker = (url) => {
    const worker = new FakeWorker(url);
    workers.push(worker);
    setTimeout(() => worker.reply({ fpops: 3e9, checksum: 1 }));
    return worker;
  };
  assert.equal(await benchmarkFpops(storage, createWorker), 3e9);
  assert.match(workers[0].url, /benchmark-worker\.js$/);
  assert.equal(workers[0].terminated, true);
  assert.equal(storage.getItem("socialgrid.benchmark"), "3000000000");
  assert.equal(await benchmarkFpops(storage, createWorker), 3e9);
  assert.equal(workers.length, 1);
});

test("a benchmark that cannot run leaves the figure out", async () => {
  const storage = new MemoryStorage();
  const createWorker = () => {
    throw new Error("no workers here");
  };
  assert.equal(await benchmarkFpops(storage, createWorker), null);
  assert.equal(storage.getItem("socialgrid.benchmark"), null);
});
