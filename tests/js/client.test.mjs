// VolunteerClient against a fake server socket, fake workers and a manual clock.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { VolunteerClient } from "../../static/socialgrid/worker/client.js";
import {
  FakeWebSocket,
  FakeWorker,
  HOST,
  LEASE,
  makeTask,
  ManualClock,
  MemoryStorage,
  welcome,
} from "./fakes.mjs";

function setup({ storage = new MemoryStorage(), cores = 2, document = null, ...options } = {}) {
  const clock = new ManualClock();
  const workers = [];
  const env = {
    ...clock.env(),
    WebSocket: FakeWebSocket,
    storage,
    document,
    random: () => 0.5,
    createWorker: (url) => {
      const worker = new FakeWorker(url);
      workers.push(worker);
      return worker;
    },
    hostCapabilities: async () => ({ cores: 4, platform: "blink-x86_64" }),
  };
  const client = new VolunteerClient({ url: "ws://x/ws/worker/", project: "mandelbrot", cores, env, ...options });
  const events = [];
  for (const type of ["state", "task", "credit", "stats", "notice", "protocol-error"]) {
    client.addEventListener(type, (event) => events.push({ type, ...event.detail }));
  }
  const states = () => events.filter((e) => e.type === "state").map((e) => e.state);
  const busy = () => workers.filter((w) => !w.terminated && w.posted.some((m) => m.task));
  return { client, clock, workers, events, states, storage, busy };
}

// Started and welcomed; returns the server socket.
async function connected(s, extra = {}) {
  await s.client.start();
  const socket = FakeWebSocket.last;
  socket.accept();
  socket.deliver(welcome(extra));
  return socket;
}

function workerOf(workers, replica) {
  return workers.findLast((w) => w.posted.some((m) => m.task && m.task.input.n === replica));
}

beforeEach(() => {
  FakeWebSocket.instances = [];
});

describe("a session", () => {
  test("it says hello with its capabilities and project, then asks for two tasks a core", async () => {
    const s = setup();
    await s.client.start();
    const socket = FakeWebSocket.last;
    socket.accept();
    const [hello] = socket.sent;
    assert.deepEqual(hello, {
      type: "hello",
      v: 1,
      host: null,
      host_token: null,
      project: "mandelbrot",
      capabilities: { cores: 4, platform: "blink-x86_64" },
    });
    socket.deliver(welcome());
    assert.deepEqual(socket.ofType("request"), [{ type: "request", n: 4 }]);
    assert.equal(s.storage.getItem("socialgrid.host"), HOST);
    assert.equal(s.storage.getItem("socialgrid.hostToken"), "signed-token");
    assert.deepEqual(s.states(), ["connecting", "running"]);
    assert.equal(s.events.find((e) => e.type === "credit").total, 12.5);
  });

  test("it sends back the stored host and token", async () => {
    const storage = new MemoryStorage({ "socialgrid.host": HOST, "socialgrid.hostToken": "t" });
    const s = setup({ storage });
    await s.client.start();
    FakeWebSocket.last.accept();
    assert.equal(FakeWebSocket.last.sent[0].host, HOST);
    assert.equal(FakeWebSocket.last.sent[0].host_token, "t");
  });

  test("it ignores a stored host id that is not a uuid", async () => {
    const s = setup({ storage: new MemoryStorage({ "socialgrid.host": "junk" }) });
    await s.client.start();
    FakeWebSocket.last.accept();
    assert.equal(FakeWebSocket.last.sent[0].host, null);
  });

  test("a signed-in host without a token forgets an old one", async () => {
    const s = setup({ storage: new MemoryStorage({ "socialgrid.hostToken": "old" }) });
    await connected(s, { host_token: null });
    assert.equal(s.storage.getItem("socialgrid.hostToken"), null);
  });

  test("it never asks for more than max_in_flight", async () => {
    const s = setup({ cores: 8 });
    const socket = await connected(s);
    assert.deepEqual(socket.ofType("request"), [{ type: "request", n: 4 }]);
  });
});

describe("no work", () => {
  const lastState = (s) => s.events.filter((e) => e.type === "state").at(-1);

  test("an empty answer with nothing held is waiting, until work comes", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [], retry_after: 30 });
    assert.equal(s.client.state, "waiting");
    assert.deepEqual(
      { state: lastState(s).state, retryAt: lastState(s).retryAt },
      { state: "waiting", retryAt: s.clock.now + 30_000 },
    );
    s.clock.advance(30_000);
    assert.equal(socket.ofType("request").length, 2, "it asks again when told to");
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: null });
    assert.equal(s.client.state, "running");
    assert.equal(lastState(s).state, "running");
    assert.equal(s.busy().length, 1);
  });

  test("the last task done with no more to come is waiting, not computing", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: null });
    workerOf(s.workers, 1).reply({ result: { counts: "AA==" }, cpu_time: 0.25 });
    assert.equal(socket.ofType("result")[0].request, 1, "the result asks for more");
    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null, tasks: [], retry_after: 30 });
    assert.equal(s.client.state, "running", "task 2 is still computing");
    workerOf(s.workers, 2).reply({ result: { counts: "AQ==" }, cpu_time: 0.25 });
    assert.equal(s.client.state, "running", "while its result is unacknowledged");
    socket.deliver({ type: "ack", of: "result", replica: 2, deadline: null });
    assert.equal(s.client.state, "waiting");
    assert.equal(lastState(s).state, "waiting");
  });

  test("an empty answer while tasks are held is still computing", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: null });
    socket.deliver({ type: "assign", tasks: [], retry_after: 30 });
    assert.equal(s.client.state, "running");
  });

  test("pausing while waiting is paused, and finishing with nothing held stops", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [], retry_after: 30 });
    s.client.pause();
    assert.equal(s.client.state, "paused");
    s.client.resume();
    assert.equal(s.client.state, "waiting");
    s.client.finishThenStop();
    assert.equal(s.client.state, "stopped");
  });
});

describe("tasks", () => {
  test("each worker runs one task and the rest wait; no request while the buffer is over half full", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2), makeTask(3)], retry_after: null });
    assert.equal(s.busy().length, 2);
    assert.deepEqual(s.workers[0].posted[0], {
      task: { app: makeTask(1).app, input: { n: 1 } },
      share: 1,
    });
    // Three of four held: the first request is the only one so far.
    assert.deepEqual(socket.ofType("request"), [{ type: "request", n: 4 }]);
    const started = s.events.filter((e) => e.type === "task" && e.action === "started");
    assert.deepEqual(started.map((e) => e.name), ["tile-1", "tile-2"]);
  });

  test("a result is sent, the waiting task takes the freed worker, and the ack counts it", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2), makeTask(3)], retry_after: 5 });
    const first = workerOf(s.workers, 1);
    first.reply({ result: { counts: "AA==" }, cpu_time: 0.25 });
    assert.deepEqual(socket.ofType("result"), [
      { type: "result", replica: 1, lease: LEASE, output: { counts: "AA==" }, cpu_time: 0.25 },
    ]);
    assert.equal(workerOf(s.workers, 3), first, "the worker is reused for the waiting task");
    assert.match(s.storage.getItem("socialgrid.results"), /AA==/);

    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null });
    assert.equal(s.events.filter((e) => e.type === "stats").at(-1).done, 1);
    assert.equal(s.storage.getItem("socialgrid.results"), null);
    assert.equal(s.client.book.get(1), undefined);
  });

  test("the count of results done outlives a reload, for the same host only", async () => {
    const storage = new MemoryStorage();
    const first = setup({ storage });
    let socket = await connected(first);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: 5 });
    workerOf(first.workers, 1).reply({ result: "one", cpu_time: 1 });
    workerOf(first.workers, 2).reply({ result: "two", cpu_time: 1 });
    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null });
    socket.deliver({ type: "ack", of: "result", replica: 2, deadline: null });
    assert.equal(first.client.done, 2);

    const reloaded = setup({ storage });
    socket = await connected(reloaded);
    assert.equal(reloaded.client.done, 2);
    assert.equal(reloaded.events.filter((e) => e.type === "stats").at(-1).done, 2);
    socket.deliver({ type: "assign", tasks: [makeTask(3)], retry_after: 5 });
    workerOf(reloaded.workers, 3).reply({ result: "three", cpu_time: 1 });
    socket.deliver({ type: "ack", of: "result", replica: 3, deadline: null });
    assert.equal(reloaded.client.done, 3);

    // Another identity (the server made a new host): its own count, from zero.
    const other = setup({ storage });
    await connected(other, { host: "0b7c0a5e-0000-4000-8000-000000000002" });
    assert.equal(other.client.done, 0);
  });

  test("a damaged stored count starts from zero", async () => {
    const storage = new MemoryStorage();
    storage.setItem("socialgrid.done", "{not json");
    const s = setup({ storage });
    await connected(s);
    assert.equal(s.client.done, 0);
  });

  test("messages beyond the server's rate wait their turn, in order, and none is lost", async () => {
    const s = setup();
    const limits = { ...welcome().limits, messages_per_second: 2 };
    const socket = await connected(s, { limits });
    const before = socket.sent.length;
    for (let i = 0; i < 6; i += 1) s.client.send({ type: "progress", replica: i, lease: LEASE, fraction: 0 });
    const sent = () => socket.sent.slice(before).filter((m) => m.type === "progress").map((m) => m.replica);
    // The burst left after the hello and the first request, then one per 1/(0.9 x 2) s.
    assert.ok(sent().length < 6, `all sent at once: ${sent()}`);
    s.clock.advance(5_000);
    assert.deepEqual(sent(), [0, 1, 2, 3, 4, 5]);
  });

  test("what waits to be sent is dropped with the connection", async () => {
    const s = setup();
    const limits = { ...welcome().limits, messages_per_second: 1 };
    const socket = await connected(s, { limits });
    const before = socket.sent.length;
    for (let i = 0; i < 3; i += 1) s.client.send({ type: "progress", replica: i, lease: LEASE, fraction: 0 });
    socket.drop(1006);
    s.clock.advance(5_000);
    assert.ok(socket.sent.slice(before).length < 3);
    assert.equal(s.client.outbox.length, 0);
  });

  test("a kernel error is reported as an error and its ack does not count as done", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 5 });
    workerOf(s.workers, 1).reply({ error: true, reason: "kernel hash mismatch" });
    assert.deepEqual(socket.ofType("error"), [
      { type: "error", replica: 1, lease: LEASE, reason: "kernel hash mismatch" },
    ]);
    socket.deliver({ type: "ack", of: "error", replica: 1, deadline: null });
    assert.equal(s.client.done, 0);
    assert.equal(s.client.book.size, 0);
  });

  test("an output too large for a message is reported as an error", async () => {
    const s = setup();
    const socket = await connected(s, {
      limits: { max_message_bytes: 2000, messages_per_second: 20, max_in_flight: 4, heartbeat_seconds: 30 },
    });
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 5 });
    workerOf(s.workers, 1).reply({ result: "x".repeat(5000), cpu_time: 1 });
    assert.equal(socket.ofType("result").length, 0);
    assert.match(socket.ofType("error")[0].reason, /larger than a message/);
  });

  test("progress goes to the page every time but to the server at most every 10 s", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 5 });
    const worker = workerOf(s.workers, 1);
    worker.reply({ progress: 0.1 });
    s.clock.advance(10_000);
    worker.reply({ progress: 0.5 });
    s.clock.advance(5_000);
    worker.reply({ progress: 0.7 });
    assert.deepEqual(socket.ofType("progress"), [
      { type: "progress", replica: 1, lease: LEASE, fraction: 0.5 },
    ]);
    const shown = s.events.filter((e) => e.type === "task" && e.action === "progress");
    assert.deepEqual(shown.map((e) => e.fraction), [0.1, 0.5, 0.7]);
  });

  test("an empty assign's retry_after holds the next request back", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [], retry_after: 20 });
    s.clock.advance(19_000);
    assert.equal(socket.ofType("request").length, 1);
    s.clock.advance(1_000);
    assert.equal(socket.ofType("request").length, 2);
  });

  test("a request nobody answers is given up after a minute", async () => {
    const s = setup();
    const socket = await connected(s);
    s.clock.advance(59_000);
    assert.equal(socket.ofType("request").length, 1);
    s.clock.advance(1_000);
    assert.equal(socket.ofType("request").length, 2);
  });

  test("cancel stops the worker running it and drops the waiting one", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: 5 });
    const worker = workerOf(s.workers, 1);
    socket.deliver({ type: "cancel", replicas: [1, 2] });
    assert.equal(worker.terminated, true);
    assert.equal(s.client.book.size, 0);
    const removed = s.events.filter((e) => e.type === "task" && e.action === "removed");
    assert.deepEqual(removed.map((e) => e.replica), [1, 2]);
  });

  for (const code of ["not_in_progress", "lease_expired", "not_yours"]) {
    test(`a result refused with ${code} is dropped`, async () => {
      const s = setup();
      const socket = await connected(s);
      socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 5 });
      workerOf(s.workers, 1).reply({ result: 1, cpu_time: 1 });
      socket.deliver({ type: "error", code, message: "too late", replica: 1 });
      assert.equal(s.client.book.size, 0);
      assert.equal(s.storage.getItem("socialgrid.results"), null);
      assert.equal(s.events.find((e) => e.type === "protocol-error").code, code);
    });
  }

  test("a result refused as rate_limited is sent again a little later", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 60 });
    workerOf(s.workers, 1).reply({ result: 1, cpu_time: 1 });
    socket.deliver({ type: "error", code: "rate_limited", message: "slow down", replica: 1 });
    s.clock.advance(5_000);
    assert.equal(socket.ofType("result").length, 2);
  });

  test("an outcome left unacknowledged for a minute is sent again", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 600 });
    workerOf(s.workers, 1).reply({ result: 1, cpu_time: 1 });
    s.clock.advance(59_000);
    assert.equal(socket.ofType("result").length, 1);
    s.clock.advance(1_000);
    assert.equal(socket.ofType("result").length, 2);
  });

  test("it sends a heartbeat after heartbeat_seconds of silence", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [], retry_after: 100 });
    s.clock.advance(29_000);
    assert.equal(socket.ofType("heartbeat").length, 0);
    s.clock.advance(1_000);
    assert.equal(socket.ofType("heartbeat").length, 1);
  });

  test("credit and notices become events", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "credit", amount: 1.5, host_total: 14 });
    socket.deliver({ type: "notice", level: "info", text: "Thanks!" });
    assert.deepEqual(
      s.events.filter((e) => e.type === "credit").at(-1),
      { type: "credit", total: 14, amount: 1.5, userTotal: null },
    );
    assert.equal(s.events.find((e) => e.type === "notice").text, "Thanks!");
  });
});

describe("asking for work on a result", () => {
  // What the client has asked for so far: requests of their own and results that carry one.
  function asked(socket) {
    return socket.sent.filter((m) => m.type === "request" || m.request).map((m) => [m.type, m.request ?? m.n]);
  }

  test("the result that brings the buffer down to half carries the request for what it lacks", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [1, 2, 3, 4].map((n) => makeTask(n)), retry_after: null });
    workerOf(s.workers, 1).reply({ result: "one", cpu_time: 1 });
    // Three of four still to compute: over half, nothing asked for.
    assert.equal(socket.ofType("result")[0].request, undefined);
    workerOf(s.workers, 2).reply({ result: "two", cpu_time: 1 });
    assert.deepEqual(socket.ofType("result")[1], {
      type: "result", replica: 2, lease: LEASE, output: "two", cpu_time: 1, request: 2,
    });
    assert.deepEqual(asked(socket), [["request", 4], ["result", 2]]);
    // The request is out until its answer: the ack of the other result brings no second one.
    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null });
    s.clock.advance(5_000);
    assert.deepEqual(asked(socket), [["request", 4], ["result", 2]]);
  });

  test("the tasks in a result's ack join the buffer and the workers", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: null });
    workerOf(s.workers, 1).reply({ result: "one", cpu_time: 1 });
    assert.equal(socket.ofType("result")[0].request, 1);
    socket.deliver({
      type: "ack", of: "result", replica: 1, deadline: null, tasks: [makeTask(3)], retry_after: null,
    });
    assert.deepEqual([...s.client.book.records.keys()], [2, 3]);
    assert.equal(s.client.book.get(3).state, "queued");
    assert.equal(s.client.done, 1);
    const added = s.events.filter((e) => e.type === "task" && e.action === "added");
    assert.deepEqual(added.map((e) => e.replica), [1, 2, 3]);
    // It is the answer: the next result may ask again, and does.
    workerOf(s.workers, 2).reply({ result: "two", cpu_time: 1 });
    assert.ok(workerOf(s.workers, 3), "the task from the ack runs on the freed worker");
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1], ["result", 1]]);
  });

  test("a result's ack without tasks holds the next request back by its retry_after", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: null });
    workerOf(s.workers, 1).reply({ result: "one", cpu_time: 1 });
    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null, tasks: [], retry_after: 20 });
    assert.deepEqual([...s.client.book.records.keys()], [2]);
    s.clock.advance(19_000);
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1]]);
    s.clock.advance(1_000);
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1], ["request", 1]]);
  });

  test("a refused result followed by an assign still fills the buffer", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: null });
    workerOf(s.workers, 1).reply({ result: "one", cpu_time: 1 });
    assert.equal(socket.ofType("result")[0].request, 1);
    socket.deliver({ type: "error", code: "lease_expired", message: "result refused", replica: 1 });
    socket.deliver({ type: "assign", tasks: [makeTask(3)], retry_after: null });
    assert.deepEqual([...s.client.book.records.keys()], [2, 3]);
    assert.equal(s.client.done, 0);
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1]]);
    // The assign answered the request: the next result asks again.
    workerOf(s.workers, 2).reply({ result: "two", cpu_time: 1 });
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1], ["result", 1]]);
  });

  test("when the server could not lease, the plain ack and its error make it ask again soon", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: null });
    workerOf(s.workers, 1).reply({ result: "one", cpu_time: 1 });
    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null });
    socket.deliver({ type: "error", code: "server_error", message: "retry later", replica: null });
    assert.equal(s.client.done, 1);
    s.clock.advance(4_000);
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1]]);
    s.clock.advance(1_000);
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1], ["request", 1]]);
  });

  test("a request that rode on a result and was never answered is given up after a minute", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: null });
    workerOf(s.workers, 1).reply({ result: "one", cpu_time: 1 });
    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null }); // no tasks: lost
    s.clock.advance(59_000);
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1]]);
    s.clock.advance(1_000);
    assert.deepEqual(asked(socket), [["request", 2], ["result", 1], ["request", 1]]);
  });

  test("an error report cannot carry a request, so one of its own follows it", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: null });
    workerOf(s.workers, 1).reply({ error: true, reason: "kernel hash mismatch" });
    assert.deepEqual(socket.ofType("error"), [
      { type: "error", replica: 1, lease: LEASE, reason: "kernel hash mismatch" },
    ]);
    assert.deepEqual(asked(socket), [["request", 2], ["request", 1]]);
  });
});

describe("reconnecting", () => {
  test("after a drop it waits with backoff, keeps computing, and resumes from welcome", async () => {
    const s = setup({ cores: 3 });
    const socket = await connected(s);
    socket.deliver({
      type: "assign",
      tasks: [makeTask(1), makeTask(2), makeTask(3)],
      retry_after: 60,
    });
    socket.drop(1006);
    assert.equal(s.client.state, "reconnecting");
    assert.equal(s.events.filter((e) => e.type === "state").at(-1).retryAt, s.clock.now + 1000);

    // Finished while offline: kept, not sent.
    workerOf(s.workers, 1).reply({ result: "one", cpu_time: 1 });
    assert.equal(socket.ofType("result").length, 0);

    s.clock.advance(1000);
    const again = FakeWebSocket.last;
    assert.notEqual(again, socket);
    again.accept();
    assert.equal(again.sent[0].host, HOST);
    // Still leased: 1 (finished), 2 (running), 4 (new to us); 3 is no longer ours.
    again.deliver(welcome({ resume: [makeTask(1), makeTask(2), makeTask(4)] }));

    assert.deepEqual(again.ofType("result").map((m) => m.output), ["one"]);
    assert.equal(workerOf(s.workers, 3).terminated, true);
    assert.equal(workerOf(s.workers, 2).terminated, false);
    assert.ok(workerOf(s.workers, 4), "the resumed task it did not have is started");
    assert.deepEqual([...s.client.book.records.keys()].sort(), [1, 2, 4]);
    assert.equal(s.client.state, "running");
  });

  test("the backoff doubles while the server keeps failing and restarts after a welcome", async () => {
    const s = setup();
    await s.client.start();
    const delays = [];
    for (let i = 0; i < 8; i++) {
      FakeWebSocket.last.drop(1006);
      const retryAt = s.events.filter((e) => e.type === "state").at(-1).retryAt;
      delays.push(retryAt - s.clock.now);
      s.clock.advance(retryAt - s.clock.now);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    FakeWebSocket.last.accept();
    FakeWebSocket.last.deliver(welcome());
    FakeWebSocket.last.drop(1006);
    assert.equal(s.events.filter((e) => e.type === "state").at(-1).retryAt - s.clock.now, 1000);
  });

  test("a result left by a reloaded page is sent again if the server still leases it", async () => {
    const storage = new MemoryStorage();
    const before = setup({ storage });
    const socket = await connected(before);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: 60 });
    workerOf(before.workers, 1).reply({ result: "one", cpu_time: 2 });
    workerOf(before.workers, 2).reply({ result: "two", cpu_time: 2 });
    // The page goes away before either ack.

    const after = setup({ storage });
    const next = await connected(after, { resume: [makeTask(1)] });
    // Nothing else held: the result sent again asks for a full buffer.
    assert.deepEqual(next.ofType("result"), [
      { type: "result", replica: 1, lease: LEASE, output: "one", cpu_time: 2, request: 4 },
    ]);
    assert.deepEqual(next.ofType("request"), []);
    assert.deepEqual(Object.keys(JSON.parse(storage.getItem("socialgrid.results"))), ["1"]);
  });

  test("a close code that retrying cannot fix stops the client with the reason", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.drop(4004, "");
    assert.equal(s.client.state, "stopped");
    assert.match(s.events.filter((e) => e.type === "state").at(-1).reason, /project/);
    s.clock.advance(120_000);
    assert.equal(FakeWebSocket.instances.length, 1);
  });

  test("stopping for good takes the running tasks off the page", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 60 });
    socket.drop(4003, "");
    assert.equal(workerOf(s.workers, 1).terminated, true);
    const last = s.events.filter((e) => e.type === "task").at(-1);
    assert.deepEqual([last.action, last.replica], ["stopped", 1]);
  });
});

describe("controls", () => {
  test("pause stops the workers but keeps the tasks; resume starts them again", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: 0 });
    const requests = socket.ofType("request").length;
    s.client.pause();
    assert.equal(s.client.state, "paused");
    assert.equal(s.busy().length, 0);
    assert.equal(s.client.book.inState("queued").length, 2);
    s.clock.advance(5000);
    assert.equal(socket.ofType("request").length, requests, "no requests while paused");

    s.client.resume();
    assert.equal(s.client.state, "running");
    assert.equal(s.busy().length, 2);
    assert.ok(workerOf(s.workers, 1) && workerOf(s.workers, 2));
  });

  test("finish-then-stop asks for nothing more and stops once everything is acknowledged", async () => {
    const s = setup({ cores: 1 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2)], retry_after: 0 });
    s.client.finishThenStop();
    assert.equal(s.client.state, "finishing");
    const requests = socket.ofType("request").length;

    workerOf(s.workers, 1).reply({ result: 1, cpu_time: 1 });
    socket.deliver({ type: "ack", of: "result", replica: 1, deadline: null });
    workerOf(s.workers, 2).reply({ result: 2, cpu_time: 1 });
    assert.equal(s.client.state, "finishing");
    socket.deliver({ type: "ack", of: "result", replica: 2, deadline: null });

    assert.equal(s.client.state, "stopped");
    assert.equal(socket.ofType("request").length, requests);
    assert.equal(socket.readyState, 3);
    assert.deepEqual(s.states().slice(-2), ["finishing", "stopped"]);
  });

  test("start after stop connects again", async () => {
    const s = setup();
    await connected(s);
    s.client.finishThenStop();
    assert.equal(s.client.state, "stopped");
    await s.client.start();
    assert.equal(FakeWebSocket.instances.length, 2);
    assert.equal(s.client.state, "connecting");
  });

  test("fewer cores: running tasks finish, no new ones start beyond the new count", async () => {
    const s = setup({ cores: 2 });
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1), makeTask(2), makeTask(3)], retry_after: 60 });
    s.client.setCores(1);
    workerOf(s.workers, 1).reply({ result: 1, cpu_time: 1 });
    assert.equal(s.busy().filter((w) => !w.posted.some((m) => m.task.input.n === 1)).length, 1);
    assert.equal(s.client.book.get(3).state, "queued");
    workerOf(s.workers, 2).reply({ result: 2, cpu_time: 1 });
    assert.equal(s.client.book.get(3).state, "running");
  });

  test("a new CPU share reaches the running workers", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "assign", tasks: [makeTask(1)], retry_after: 60 });
    s.client.setCpuShare(0.3);
    assert.deepEqual(workerOf(s.workers, 1).posted.at(-1), { share: 0.3 });
  });

  test("with pause-when-hidden it pauses in a hidden tab and resumes when visible", async () => {
    const document = new EventTarget();
    document.visibilityState = "visible";
    const s = setup({ document, pauseWhenHidden: true });
    await connected(s);
    document.visibilityState = "hidden";
    document.dispatchEvent(new Event("visibilitychange"));
    assert.equal(s.client.state, "paused");
    document.visibilityState = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
    assert.equal(s.client.state, "running");
  });

  test("a volunteer's own pause is not undone by the tab becoming visible", async () => {
    const document = new EventTarget();
    document.visibilityState = "visible";
    const s = setup({ document, pauseWhenHidden: true });
    await connected(s);
    s.client.pause();
    document.visibilityState = "hidden";
    document.dispatchEvent(new Event("visibilitychange"));
    document.visibilityState = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
    assert.equal(s.client.state, "paused");
  });
});

describe("membership changes made on the account", () => {
  test("pausing the project pauses this page, and resuming it resumes", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "membership", project: "mandelbrot", state: "paused", no_more_work: false });
    assert.equal(s.client.state, "paused");
    socket.deliver({ type: "membership", project: "mandelbrot", state: "active", no_more_work: false });
    assert.equal(s.client.state, "running");
  });

  test("another project's change is ignored", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "membership", project: "abc-at-home", state: "left", no_more_work: false });
    assert.equal(s.client.state, "running");
  });

  test("finish-then-stop finishes and leaving stops with a reason", async () => {
    const s = setup();
    const socket = await connected(s);
    socket.deliver({ type: "membership", project: "mandelbrot", state: "active", no_more_work: true });
    assert.ok(["finishing", "stopped"].includes(s.client.state));
    const t = setup();
    const other = await connected(t);
    other.deliver({ type: "membership", project: "mandelbrot", state: "left", no_more_work: false });
    assert.equal(t.client.state, "stopped");
    assert.equal(t.client.stopReason, "You left this project.");
  });
});
