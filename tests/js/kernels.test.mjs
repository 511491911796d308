// Kernel verification in the runner. Importing from a Blob URL needs a browser; Node checks
// the hashing and fetching, with a fake fetch installed before kernels.js captures it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

const served = new Map();
globalThis.fetch = async (url) => {
  if (!served.has(url)) return { ok: false, status: 404 };
  return { ok: true, status: 200, arrayBuffer: async () => served.get(url).buffer };
};
const { fetchVerified, sha256Hex, TaskError } = await import(
  "../../static/socialgrid/worker/kernels.js"
);

const SOURCE = new TextEncoder().encode("export async function run(input) { return input; }\n");
const SHA = createHash("sha256").update(SOURCE).digest("hex");
served.set("/kernel.js", SOURCE);

test("sha256Hex agrees with Node's crypto", async () => {
  assert.equal(await sha256Hex(SOURCE), SHA);
  assert.equal(
    await sha256Hex(new Uint8Array()),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
});

test("the bytes come back when they hash to the sha256 given", async () => {
  assert.deepEqual(await fetchVerified("/kernel.js", SHA, "kernel"), SOURCE);
});

test("bytes that hash to something else are refused", async () => {
  await assert.rejects(fetchVerified("/kernel.js", "0".repeat(64), "kernel"), (error) => {
    assert.ok(error instanceof TaskError);
    assert.equal(error.message, "kernel hash mismatch");
    return true;
  });
});

test("a failed fetch is a task error naming the status", async () => {
  await assert.rejects(fetchVerified("/missing.js", SHA, "wasm"), /could not fetch the wasm: HTTP 404/);
});
