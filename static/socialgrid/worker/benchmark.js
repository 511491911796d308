// The host's floating-point speed (benchmark_fpops in hello), measured once and remembered.
//
// The server uses it for the credit a result claims, so it only needs to be roughly right
// and stable: ~0.3 s of dependent multiply-adds in a worker, stored in localStorage.

export const STORAGE_KEY = "socialgrid.benchmark";
export const BUDGET_MS = 300;
const MAX_FPOPS = 1e13; // the protocol's ceiling
const TIMEOUT_MS = 10_000;

// Floating-point operations per second of this thread, over about budgetMs of `now()`.
export function measureFlops(budgetMs, now) {
  // Four independent chains, so the loop is not bound by one chain's latency; the values
  // stay bounded (|x| converges to b / (1 - a)) and are returned so the loop is not dead.
  const a = 0.999999;
  const b = 1e-6;
  let x = 0.1;
  let y = 0.2;
  let z = 0.3;
  let w = 0.4;
  const rounds = 100_000;
  let ops = 0;
  const start = now();
  let elapsed = 0;
  do {
    for (let i = 0; i < rounds; i++) {
      x = x * a + b;
      y = y * a + b;
      z = z * a + b;
      w = w * a + b;
    }
    ops += rounds * 8;
    elapsed = now() - start;
  } while (elapsed < budgetMs);
  return { fpops: ops / (Math.max(elapsed, 1) / 1000), checksum: x + y + z + w };
}

// The stored figure, or a new measurement in a worker (null if that is impossible).
export async function benchmarkFpops(storage, createWorker) {
  const stored = Number(storage.getItem(STORAGE_KEY));
  if (validFpops(stored)) return stored;
  const measured = await inWorker(createWorker).catch(() => null);
  if (!validFpops(measured)) return null;
  storage.setItem(STORAGE_KEY, String(measured));
  return measured;
}

function validFpops(value) {
  return Number.isFinite(value) && value > 0 && value <= MAX_FPOPS;
}

function inWorker(createWorker) {
  return new Promise((resolve, reject) => {
    const worker = createWorker(new URL("./benchmark-worker.js", import.meta.url));
    const done = (settle, value) => {
      clearTimeout(timer);
      worker.terminate();
      settle(value);
    };
    const timer = setTimeout(() => done(reject, new Error("the benchmark timed out")), TIMEOUT_MS);
    worker.onmessage = (event) => done(resolve, Math.min(MAX_FPOPS, event.data.fpops));
    worker.onerror = (event) => done(reject, new Error(event.message || "the benchmark failed"));
  });
}
