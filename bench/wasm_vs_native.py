"""How close does the Mandelbrot kernel's WebAssembly come to native code?

Builds compute/examples/wasm/mandelbrot.c natively (with a small main that times the tiles),
then runs the same tiles in headless Chromium inside a Web Worker: the raw wasm function,
the kernel's run() with the wasm module, and the kernel's pure-JavaScript fallback. Each
measurement is the best of --repeat passes over all tiles. The sums of the counts must
agree, since every version does the same double arithmetic.

    .venv/bin/python bench/wasm_vs_native.py [--tiles 30] [--repeat 3] [--cc gcc]

Needs a C compiler, Debian's Chromium at /usr/bin/chromium and Playwright for Python (its
own browsers are not used; never `playwright install`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compute.examples import mandelbrot  # noqa: E402 - after the path is set

WASM_DIR = ROOT / "compute" / "examples" / "wasm"
KERNEL = ROOT / "compute" / "examples" / "kernels" / "mandelbrot.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

NATIVE_MAIN = r"""
#include <stdio.h>
#include <time.h>
#include "mandelbrot.c"

/* stdin: the repeat count, the tile count, then per tile
   re_min dx im_max dy x y w h max_iter. stdout: best seconds and the sum of the counts. */
int main(void) {
    int repeat, n;
    if (scanf("%d %d", &repeat, &n) != 2) return 1;
    static double re_min[1024], dx[1024], im_max[1024], dy[1024];
    static int x[1024], y[1024], w[1024], h[1024], max_iter[1024];
    if (n > 1024) return 1;
    for (int i = 0; i < n; i++) {
        if (scanf("%lf %lf %lf %lf %d %d %d %d %d", &re_min[i], &dx[i], &im_max[i], &dy[i],
                  &x[i], &y[i], &w[i], &h[i], &max_iter[i]) != 9) return 1;
    }
    double best = 1e300;
    unsigned long long sum = 0;
    for (int r = 0; r < repeat; r++) {
        struct timespec t0, t1;
        sum = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < n; i++) {
            tile_rows(re_min[i], dx[i], im_max[i], dy[i], x[i], y[i], w[i], 0, h[i], max_iter[i]);
            for (int k = 0; k < w[i] * h[i]; k++) sum += counts[k];
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (s < best) best = s;
    }
    printf("%.6f %llu\n", best, sum);
    return 0;
}
"""

WORKER = r"""
import { run } from "./mandelbrot.js";

function sum(base64) {
  const bytes = atob(base64);  // the bench may use the page's globals; the kernel may not
  let total = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    total += bytes.charCodeAt(i) | (bytes.charCodeAt(i + 1) << 8);
  }
  return total;
}

// The best time of `repeat` passes; the last pass's result is summed outside the timing.
async function best(repeat, pass, summarise) {
  let seconds = Infinity, last = null;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    last = await pass();
    seconds = Math.min(seconds, (performance.now() - t0) / 1000);
  }
  return { seconds, sum: summarise(last) };
}

onmessage = async ({ data: { tiles, repeat } }) => {
  const module = await WebAssembly.compile(await (await fetch("mandelbrot.wasm")).arrayBuffer());
  const instance = await WebAssembly.instantiate(module, {});
  const { memory, counts_ptr, tile_rows } = instance.exports;
  const raw = await best(repeat, async () => {
    let total = 0;
    for (const t of tiles) {
      const dx = (t.re_max - t.re_min) / t.width, dy = (t.im_max - t.im_min) / t.height;
      tile_rows(t.re_min, dx, t.im_max, dy, t.x, t.y, t.w, 0, t.h, t.max_iter);
      const counts = new Uint16Array(memory.buffer, counts_ptr(), t.w * t.h);
      for (let k = 0; k < counts.length; k++) total += counts[k];
    }
    return total;
  }, (total) => total);
  const kernel = (env) => async () => {
    const outputs = [];
    for (const t of tiles) outputs.push((await run(t, () => {}, env)).counts);
    return outputs;
  };
  const total = (outputs) => outputs.reduce((acc, counts) => acc + sum(counts), 0);
  const wasm = await best(repeat, kernel({ wasm: module }), total);
  const js = await best(repeat, kernel({ wasm: null }), total);
  postMessage({ raw, wasm, js, userAgent: navigator.userAgent });
};
"""

PAGE = "<!doctype html><title>wasm vs native</title>"

RUN_IN_WORKER = """([tiles, repeat]) => new Promise((resolve) => {
  const worker = new Worker("worker.js", { type: "module" });
  worker.onmessage = (e) => resolve(e.data);
  worker.onerror = (e) => resolve({ error: e.message || "the worker failed" });
  worker.postMessage({ tiles, repeat });
})"""


def pick_tiles(count: int) -> list[dict[str, Any]]:
    tiles = mandelbrot.demo_inputs()
    if count >= len(tiles):
        return tiles
    step = len(tiles) / count
    return [tiles[int(i * step)] for i in range(count)]


def run_native(tiles: list[dict[str, Any]], repeat: int, cc: str) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        main, exe = Path(tmp) / "main.c", Path(tmp) / "bench"
        main.write_text(NATIVE_MAIN)
        flags = ["-O3", "-march=native", "-ffp-contract=off"]
        subprocess.run([cc, *flags, "-I", str(WASM_DIR), "-o", str(exe), str(main)], check=True)
        lines = [f"{repeat} {len(tiles)}"]
        for t in tiles:
            dx = (t["re_max"] - t["re_min"]) / t["width"]
            dy = (t["im_max"] - t["im_min"]) / t["height"]
            # repr() of a float is the shortest string that reads back to the same double.
            numbers = [float(t["re_min"]), dx, float(t["im_max"]), dy]
            ints = [t["x"], t["y"], t["w"], t["h"], t["max_iter"]]
            lines.append(" ".join([*map(repr, numbers), *map(str, ints)]))
        out = subprocess.run(
            [str(exe)], input="\n".join(lines), capture_output=True, text=True, check=True
        )
        seconds, total = out.stdout.split()
        version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
        return float(seconds), int(total), f"{version.splitlines()[0]} {' '.join(flags)}"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


async def run_browser(tiles: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "index.html").write_text(PAGE)
        (site / "worker.js").write_text(WORKER)
        shutil.copy(KERNEL, site / "mandelbrot.js")
        shutil.copy(WASM_DIR / "mandelbrot.wasm", site / "mandelbrot.wasm")
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=tmp))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page()
                    await page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
                    result = await page.evaluate(RUN_IN_WORKER, [tiles, repeat])
                    result["browser"] = f"Chromium {browser.version}"
                finally:
                    await browser.close()
        finally:
            server.shutdown()
            server.server_close()
    if "error" in result:
        raise RuntimeError(f"the benchmark worker failed: {result['error']}")
    return result


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {model}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=int, default=30, help="demo tiles to time (30: all)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best one counts")
    parser.add_argument("--cc", default=shutil.which("gcc") or "clang", help="C compiler")
    args = parser.parse_args()

    tiles = pick_tiles(args.tiles)
    pixels = sum(t["w"] * t["h"] for t in tiles)
    print(f"machine: {machine()}")
    print(f"tiles:   {len(tiles)} demo tiles, {pixels} pixels, max_iter {tiles[0]['max_iter']}")
    native, native_sum, compiler = run_native(tiles, args.repeat, args.cc)
    print(f"native:  {native:8.3f} s   ({compiler})")
    result = asyncio.run(run_browser(tiles, args.repeat))
    print(f"browser: {result['browser']}")
    rows = [
        ("wasm tile_rows()", result["raw"]),
        ("kernel run(), wasm", result["wasm"]),
        ("kernel run(), JS", result["js"]),
    ]
    for label, r in rows:
        print(f"{label:20} {r['seconds']:8.3f} s   native/this = {native / r['seconds']:.2f}")
    sums = {native_sum, *(r["sum"] for _, r in rows)}
    print(f"sum of counts: {'identical' if len(sums) == 1 else 'DIFFERENT'} ({native_sum})")
    seconds = {k: result[k]["seconds"] for k in ("raw", "wasm", "js")}
    print(json.dumps({"native": native, **seconds}))
    if len(sums) != 1:
        sys.exit("the versions disagree: the arithmetic is not the same")


if __name__ == "__main__":
    main()
