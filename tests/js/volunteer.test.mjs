// The page binding's pure parts; the binding itself is exercised in Chromium.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  controlsFor,
  formatCredit,
  loadSettings,
  socketUrl,
  statusText,
} from "../../static/socialgrid/volunteer.js";
import { MemoryStorage } from "./fakes.mjs";

test("a socket path becomes ws:// or wss:// on the page's host", () => {
  assert.equal(socketUrl("/ws/worker/", { href: "http://example.org:8000/p/x/" }), "ws://example.org:8000/ws/worker/");
  assert.equal(socketUrl("/ws/worker/", { href: "https://example.org/p/x/" }), "wss://example.org/ws/worker/");
  assert.equal(socketUrl("wss://other.example/ws/", { href: "http://example.org/" }), "wss://other.example/ws/");
});

test("each state has its sentence", () => {
  assert.equal(statusText("idle"), "Idle");
  assert.equal(statusText("connecting"), "Connecting…");
  assert.equal(statusText("running", { cores: 2 }), "Computing on 2 cores");
  assert.equal(statusText("running", { cores: 1 }), "Computing on 1 core");
  assert.equal(statusText("running", { cores: 2, idle: true }), "Waiting for the server to answer…");
  assert.equal(statusText("paused"), "Paused");
  assert.equal(statusText("finishing"), "Finishing current work…");
  assert.equal(statusText("stopped"), "Stopped");
  assert.equal(statusText("stopped", { reason: "Banned." }), "Stopped: Banned.");
  assert.equal(statusText("reconnecting", { retryAt: 5000, now: 1200 }), "Reconnecting in 4 s…");
  assert.equal(statusText("reconnecting", { retryAt: 5000, now: 5200 }), "Reconnecting…");
});

test("the buttons each state offers", () => {
  assert.deepEqual(controlsFor("idle"), { start: "on", pause: "hidden", resume: "hidden", finish: "hidden" });
  assert.deepEqual(controlsFor("running"), { start: "hidden", pause: "on", resume: "hidden", finish: "on" });
  assert.deepEqual(controlsFor("paused"), { start: "hidden", pause: "hidden", resume: "on", finish: "on" });
  assert.equal(controlsFor("finishing").finish, "off");
  assert.equal(controlsFor("stopped").start, "on");
});

test("settings default to half the cores and full CPU, and are kept within range", () => {
  assert.deepEqual(loadSettings(new MemoryStorage(), 8), { cores: 4, cpu: 100, pauseHidden: false });
  assert.deepEqual(loadSettings(new MemoryStorage(), 1), { cores: 1, cpu: 100, pauseHidden: false });
  const stored = new MemoryStorage({
    "socialgrid.settings": JSON.stringify({ cores: 12, cpu: 5, pauseHidden: true }),
  });
  assert.deepEqual(loadSettings(stored, 8), { cores: 8, cpu: 10, pauseHidden: true });
  const damaged = new MemoryStorage({ "socialgrid.settings": "{" });
  assert.deepEqual(loadSettings(damaged, 4), { cores: 2, cpu: 100, pauseHidden: false });
});

test("credit is written by the same rule as on every page", () => {
  const table = JSON.parse(readFileSync(new URL("../fixtures/credit_formats.json", import.meta.url)));
  assert.ok(table.cases.length > 20);
  for (const [value, text] of table.cases) assert.equal(formatCredit(value), text, `credit ${value}`);
});
