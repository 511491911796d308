// Takes away the worker globals a kernel has no business with, before a kernel is imported.
//
// A kernel gets its input and gives back a result; it has no reason to reach the network,
// storage, other contexts or the page. The runner keeps private references to the few of
// these it needs (fetch for kernels, postMessage for results) before calling lockDown().
// This is defence in depth, not a sandbox: import() is syntax and cannot be removed, and a
// kernel still shares the realm with the runner. Results are checked on the server anyway.

export const FORBIDDEN = [
  // network
  "fetch",
  "XMLHttpRequest",
  "WebSocket",
  "WebSocketStream",
  "WebTransport",
  "EventSource",
  "importScripts",
  // storage
  "indexedDB",
  "caches",
  "requestFileSystem",
  "webkitRequestFileSystem",
  "webkitRequestFileSystemSync",
  "webkitResolveLocalFileSystemURL",
  "webkitResolveLocalFileSystemSyncURL",
  // other contexts, and navigator (storage manager, locks, USB, ...)
  "BroadcastChannel",
  "Worker",
  "SharedWorker",
  "navigator",
  // the page: only the runner speaks to it, and only the runner ends the worker
  "postMessage",
  "close",
];

// Deletes each name wherever it sits on the global's prototype chain (interfaces such as
// WebSocket are own properties; fetch, indexedDB, caches live on WorkerGlobalScope's
// prototype). Returns the names that are still reachable, which should be none.
export function lockDown(global, names = FORBIDDEN) {
  const left = [];
  for (const name of names) {
    for (let owner = global; owner !== null; owner = Object.getPrototypeOf(owner)) {
      if (Object.hasOwn(owner, name)) Reflect.deleteProperty(owner, name);
    }
    if (name in global && !shadow(global, name)) left.push(name);
  }
  return left;
}

// A property that would not delete is hidden behind an own undefined one.
function shadow(global, name) {
  try {
    Object.defineProperty(global, name, { value: undefined, configurable: false });
    return global[name] === undefined;
  } catch {
    return false;
  }
}
