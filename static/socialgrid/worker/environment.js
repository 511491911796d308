// What VolunteerClient uses of the browser, gathered in one place so that tests can hand it
// a fake WebSocket, Worker, storage and clock instead.
import { benchmarkFpops } from "./benchmark.js";
import { describeHost } from "./capabilities.js";

export function defaultCores(navigator) {
  return Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / 2));
}

// localStorage, or a stand-in in memory where the browser refuses it (storage turned off,
// a sandboxed frame): the client then works but forgets everything on reload.
export function browserStorage() {
  try {
    const storage = globalThis.localStorage;
    storage.getItem("socialgrid.host");
    return storage;
  } catch {
    const map = new Map();
    return {
      getItem: (key) => (map.has(key) ? map.get(key) : null),
      setItem: (key, value) => map.set(key, String(value)),
      removeItem: (key) => map.delete(key),
    };
  }
}

export function browserEnvironment() {
  const createWorker = (url) => new Worker(url, { type: "module" });
  const storage = browserStorage();
  return {
    WebSocket: globalThis.WebSocket,
    storage,
    document: globalThis.document,
    createWorker,
    setTimeout: globalThis.setTimeout.bind(globalThis),
    clearTimeout: globalThis.clearTimeout.bind(globalThis),
    setInterval: globalThis.setInterval.bind(globalThis),
    clearInterval: globalThis.clearInterval.bind(globalThis),
    now: () => Date.now(),
    random: Math.random,
    hostCapabilities: async () =>
      describeHost({
        navigator: globalThis.navigator,
        wasm: globalThis.WebAssembly,
        crossOriginIsolated: globalThis.crossOriginIsolated,
        benchmarkFpops: await benchmarkFpops(storage, createWorker),
      }),
  };
}
