// Fetching, verifying and importing kernels (inside the runner worker).
//
// A task names its kernel and WebAssembly module by URL and sha256. The bytes fetched must
// hash to that sha256 or the task is refused: the kernel is then exactly what the project
// published, whichever server or cache delivered it. Verified kernels are imported from a
// Blob URL of the verified bytes (a second fetch by URL could return something else) and
// kept by hash, so a worker fetches each kernel version once.

// Taken when this module loads, before lockDown() removes them from the worker's globals.
const fetchUrl = globalThis.fetch.bind(globalThis);
const subtle = globalThis.crypto.subtle;

export class TaskError extends Error {}

const kernels = new Map(); // kernel sha256 -> Promise of the module's namespace
const wasms = new Map(); // wasm sha256 -> Promise of the WebAssembly.Module

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function fetchVerified(url, sha256, what) {
  let response;
  try {
    response = await fetchUrl(url, { credentials: "same-origin" });
  } catch (error) {
    throw new TaskError(`could not fetch the ${what}: ${error.message}`);
  }
  if (!response.ok) throw new TaskError(`could not fetch the ${what}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if ((await sha256Hex(bytes)) !== sha256) throw new TaskError(`${what} hash mismatch`);
  return bytes;
}

// The app's kernel namespace and compiled wasm (or null). `beforeImport` runs once the
// kernel's bytes are verified and before any of its code runs (the runner locks down there).
export async function loadApp(app, beforeImport) {
  const wasm = app.wasm_url ? await cached(wasms, app.wasm_sha256, () => compileWasm(app)) : null;
  const kernel = await cached(kernels, app.kernel_sha256, async () => {
    const bytes = await fetchVerified(app.kernel_url, app.kernel_sha256, "kernel");
    beforeImport();
    return importBytes(bytes);
  });
  return { kernel, wasm };
}

async function compileWasm(app) {
  const bytes = await fetchVerified(app.wasm_url, app.wasm_sha256, "wasm");
  return WebAssembly.compile(bytes);
}

async function importBytes(bytes) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "text/javascript" }));
  try {
    const kernel = await import(url);
    if (typeof kernel.run !== "function") throw new TaskError("the kernel exports no run()");
    return kernel;
  } finally {
    URL.revokeObjectURL(url);
  }
}

// A failed load is forgotten, so the next task tries again (the network may be back).
function cached(map, key, load) {
  if (!map.has(key)) {
    const promise = load();
    map.set(key, promise);
    promise.catch(() => map.delete(key));
  }
  return map.get(key);
}
