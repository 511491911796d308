import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { Connection, reconnectDelay } from "../../static/socialgrid/worker/connection.js";
import { FakeWebSocket, ManualClock } from "./fakes.mjs";

beforeEach(() => {
  FakeWebSocket.instances = [];
});

test("the delay doubles from 1 s and stops growing at 60 s", () => {
  const middle = () => 0.5; // factor 1
  const delays = [0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) => reconnectDelay(n, middle));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

test("the jitter keeps the delay within half to one and a half times the base", () => {
  for (const attempt of [0, 3, 10]) {
    const base = Math.min(60000, 1000 * 2 ** attempt);
    assert.equal(reconnectDelay(attempt, () => 0), base * 0.5);
    assert.ok(reconnectDelay(attempt, () => 0.999999) < base * 1.5);
    for (let i = 0; i < 200; i++) {
      const delay = reconnectDelay(attempt);
      assert.ok(delay >= base * 0.5 && delay < base * 1.5, `${delay} for ${attempt}`);
    }
  }
});

function connection() {
  const clock = new ManualClock();
  const env = { ...clock.env(), WebSocket: FakeWebSocket, random: () => 0.5 };
  const conn = new Connection("ws://x/", env);
  const drops = [];
  const messages = [];
  conn.addEventListener("drop", (event) => drops.push(event.detail));
  conn.addEventListener("message", (event) => messages.push(event.detail));
  return { conn, clock, drops, messages };
}

test("it reopens after a drop and reports when", () => {
  const { conn, clock, drops } = connection();
  conn.open();
  FakeWebSocket.last.accept();
  FakeWebSocket.last.drop(1006);
  assert.deepEqual(drops, [{ code: 1006, reason: "", fatal: false, retryIn: 1000 }]);
  clock.advance(999);
  assert.equal(FakeWebSocket.instances.length, 1);
  clock.advance(1);
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("a server that closes on every attempt is retried ever more slowly until settled()", () => {
  const { conn, clock, drops } = connection();
  conn.open();
  for (let i = 0; i < 3; i++) {
    FakeWebSocket.last.accept(); // opening is not enough to reset the backoff
    FakeWebSocket.last.drop(1011);
    clock.advance(drops.at(-1).retryIn);
  }
  assert.deepEqual(drops.map((d) => d.retryIn), [1000, 2000, 4000]);
  FakeWebSocket.last.accept();
  conn.settled();
  FakeWebSocket.last.drop(1011);
  assert.equal(drops.at(-1).retryIn, 1000);
});

test("close codes that retrying cannot fix are not retried", () => {
  const { conn, clock, drops } = connection();
  conn.open();
  FakeWebSocket.last.drop(4003, "banned");
  assert.equal(drops[0].fatal, true);
  assert.equal(drops[0].retryIn, null);
  clock.advance(600_000);
  assert.equal(FakeWebSocket.instances.length, 1);
});

test("close() ends the connection for good, without a drop event", () => {
  const { conn, clock, drops } = connection();
  conn.open();
  const socket = FakeWebSocket.last;
  socket.accept();
  conn.close();
  assert.equal(socket.closedWith, 1000);
  clock.advance(600_000);
  assert.deepEqual(drops, []);
  assert.equal(FakeWebSocket.instances.length, 1);
});

test("frames that are not JSON objects are ignored", () => {
  const { conn, messages } = connection();
  conn.open();
  const socket = FakeWebSocket.last;
  socket.accept();
  socket.onmessage({ data: "not json" });
  socket.onmessage({ data: "3" });
  socket.deliver({ type: "heartbeat", time: "2030-01-01T00:00:00Z" });
  assert.deepEqual(messages, [{ type: "heartbeat", time: "2030-01-01T00:00:00Z" }]);
});

test("send() says false while the socket is not open", () => {
  const { conn } = connection();
  assert.equal(conn.send({ type: "heartbeat" }), false);
  conn.open();
  assert.equal(conn.send({ type: "heartbeat" }), false);
  FakeWebSocket.last.accept();
  assert.equal(conn.send({ type: "heartbeat" }), true);
  assert.deepEqual(FakeWebSocket.last.sent, [{ type: "heartbeat" }]);
});
