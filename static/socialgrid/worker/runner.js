// The Web Worker (a module worker) that runs tasks, one at a time, for the page's pool.
//
// The page posts {task: {app, input}, share} to run a task and {share} to change the CPU
// share of the one running. The worker posts {progress} as the kernel reports it, then
// {result, cpu_time} or {error: true, reason}. To abort, the page terminates the worker.
import { DutyCycle } from "./throttle.js";
import { loadApp, TaskError } from "./kernels.js";
import { lockDown } from "./lockdown.js";

// Kept before any kernel runs: a kernel could replace or remove these globals, and must
// not be able to post as the runner, fake its CPU time or stall the throttle.
const post = globalThis.postMessage.bind(globalThis);
const now = performance.now.bind(performance);
const wait = globalThis.setTimeout.bind(globalThis);
const sleep = (ms) => new Promise((resolve) => wait(resolve, ms));
const yieldToEvents = eventYielder();

let share = 1; // the latest the page sent, which may arrive while a kernel loads
let running = null; // the DutyCycle of the task being run
let lockedDown = false;

globalThis.addEventListener("message", ({ data }) => {
  if (data.share !== undefined) share = data.share;
  if (running) running.setShare(share);
  if (data.task) runTask(data.task);
});

async function runTask(task) {
  try {
    const { kernel, wasm } = await loadApp(task.app, isolate);
    const cycle = new DutyCycle(share, now());
    running = cycle;
    const output = await kernel.run(task.input, (fraction) => progress(cycle, fraction), { wasm });
    const cpuSeconds = cycle.stop(now()) / 1000;
    post({ result: asJson(output), cpu_time: cpuSeconds });
  } catch (error) {
    const reason =
      error instanceof TaskError ? error.message : `the kernel failed: ${describe(error)}`;
    post({ error: true, reason });
  } finally {
    running = null;
  }
}

// The progress callback kernels await: report, then sleep for the CPU share. At full share
// it still yields to the event loop, so a {share} message can reach a running task.
async function progress(cycle, fraction) {
  post({ progress: Number(fraction) });
  const pause = cycle.pause(now());
  if (pause > 0) await sleep(pause);
  else await yieldToEvents();
  cycle.resume(now());
}

function isolate() {
  if (lockedDown) return;
  const left = lockDown(globalThis);
  if (left.length) throw new TaskError(`could not isolate the kernel from ${left.join(", ")}`);
  lockedDown = true;
}

// The result as the server will see it: plain JSON (what the kernel contract promises).
function asJson(output) {
  const text = JSON.stringify(output);
  if (text === undefined) throw new TaskError("the kernel returned no JSON value");
  return JSON.parse(text);
}

function describe(error) {
  return String((error && error.message) || error);
}

// A zero-delay yield through a MessageChannel: setTimeout(0) is clamped to 4 ms when nested.
function eventYielder() {
  const channel = new MessageChannel();
  const waiting = [];
  channel.port1.onmessage = () => waiting.shift()();
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      channel.port2.postMessage(null);
    });
}
