// Runs a browser kernel under Node.js for the tests. Reads a JSON request on stdin,
//   {"kernel": path, "function": "run", "wasm": path or null, "inputs": [...]}
// calls the module's function on each input and prints {"results": [...]}, one per input:
// {"output": value, "progress": [fractions]} or {"error": message}. run() gets a progress
// callback that records what it reports and env = {wasm: compiled module or null}; any
// other exported function is called with the input alone.
//
// progress() returns a Promise that settles on a later turn of the event loop, as the
// browser worker's does when it pauses for the CPU share: a kernel that returns while one
// is still pending did not await it, and its result is reported as an error.
//
// The kernel is evaluated in a fresh V8 context, whose globals are the language's and
// WebAssembly's only (no fetch, atob, TextEncoder, self, performance...): a kernel that
// leans on a browser or Node global fails here as it would in a bare worker. Needs
// `node --experimental-vm-modules`.
import { readFileSync } from "node:fs";
import vm from "node:vm";

const request = JSON.parse(readFileSync(0, "utf8"));
const name = request.function || "run";
const kernel = new vm.SourceTextModule(readFileSync(request.kernel, "utf8"), {
  identifier: request.kernel,
  context: vm.createContext({}),
});
await kernel.link((specifier) => {
  throw new Error(`a kernel imports nothing, but this one imports ${specifier}`);
});
await kernel.evaluate();
const exported = kernel.namespace;
if (typeof exported[name] !== "function") throw new Error(`the kernel exports no ${name}()`);
const wasm = request.wasm ? await WebAssembly.compile(readFileSync(request.wasm)) : null;

const results = [];
for (const input of request.inputs) {
  const progress = [];
  let pending = 0;
  const report = (fraction) => {
    progress.push(fraction);
    pending++;
    return new Promise((resolve) => setImmediate(() => resolve(pending--)));
  };
  try {
    const output =
      name === "run" ? await exported.run(input, report, { wasm }) : await exported[name](input);
    if (pending > 0) throw new Error("the kernel returned without awaiting progress()");
    // Through JSON, as the worker posts it: values from the kernel's context become plain.
    results.push({ output: JSON.parse(JSON.stringify(output)), progress });
  } catch (error) {
    results.push({ error: String(error && error.message) });
  }
}
process.stdout.write(JSON.stringify({ results }));
