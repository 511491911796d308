import assert from "node:assert/strict";
import { test } from "node:test";

import { FORBIDDEN, lockDown } from "../../static/socialgrid/worker/lockdown.js";

// A worker global in miniature: interfaces as own properties, the rest on prototypes.
function workerGlobal() {
  class WorkerGlobalScope {
    fetch() {}
    importScripts() {}
    get indexedDB() {
      return {};
    }
    get caches() {
      return {};
    }
    get navigator() {
      return {};
    }
  }
  class DedicatedWorkerGlobalScope extends WorkerGlobalScope {
    postMessage() {}
    close() {}
  }
  const global = new DedicatedWorkerGlobalScope();
  Object.assign(global, {
    WebSocket: class {},
    XMLHttpRequest: class {},
    EventSource: class {},
    BroadcastChannel: class {},
    Worker: class {},
    setTimeout() {},
    WebAssembly: {},
    Math,
  });
  return global;
}

test("the network, storage and messaging globals are gone, wherever they were defined", () => {
  const global = workerGlobal();
  assert.deepEqual(lockDown(global), []);
  for (const name of FORBIDDEN) assert.ok(!(name in global) || global[name] === undefined, name);
  assert.equal(typeof global.fetch, "undefined");
  assert.equal(typeof global.indexedDB, "undefined");
  assert.equal(typeof global.WebSocket, "undefined");
});

test("what kernels may use stays", () => {
  const global = workerGlobal();
  lockDown(global);
  assert.equal(typeof global.setTimeout, "function");
  assert.ok(global.WebAssembly);
  assert.equal(global.Math, Math);
});

test("a property that will not delete is shadowed by undefined", () => {
  const proto = {};
  Object.defineProperty(proto, "fetch", { value() {}, configurable: false });
  const global = Object.create(proto);
  assert.deepEqual(lockDown(global, ["fetch"]), []);
  assert.equal(global.fetch, undefined);
});

test("it says which names it could not remove", () => {
  const global = {};
  Object.defineProperty(global, "fetch", { value() {}, configurable: false });
  assert.deepEqual(lockDown(global, ["fetch", "caches"]), ["fetch"]);
});
