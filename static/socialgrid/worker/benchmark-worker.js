// The worker that measures floating-point speed for benchmark.js, away from the page's thread.
import { BUDGET_MS, measureFlops } from "./benchmark.js";

postMessage(measureFlops(BUDGET_MS, () => performance.now()));
