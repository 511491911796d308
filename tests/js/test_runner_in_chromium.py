"""The runner worker (static/socialgrid/worker/runner.js) in Chromium, on a static server.

Checks what Node cannot: kernels imported from verified bytes in a real module worker, the
hash check, the globals taken away from kernels, and the CPU-share throttle.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from compute.examples import EXAMPLES, abc_triples, mandelbrot

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

PROBE = """
export async function run(names) {
  const seen = {};
  for (const name of names) seen[name] = typeof globalThis[name];
  return seen;
}
"""

# Busy for `steps` stretches of `ms` milliseconds, reporting progress after each.
SPIN = """
export async function run({ steps, ms }, progress) {
  for (let i = 1; i <= steps; i++) {
    const until = Date.now() + ms;
    while (Date.now() < until);
    await progress(i / steps);
  }
  return steps;
}
"""

RUN_TASK = """
async ({ task, share }) => new Promise((resolve) => {
  const worker = new Worker("/static/socialgrid/worker/runner.js", { type: "module" });
  const progress = [];
  const started = performance.now();
  worker.onerror = (event) => resolve({ crash: event.message });
  worker.onmessage = ({ data }) => {
    if ("progress" in data) return progress.push(data.progress);
    worker.terminate();
    resolve({ ...data, progress, wall: (performance.now() - started) / 1000 });
  };
  worker.postMessage({ task, share });
})
"""


class Handler(SimpleHTTPRequestHandler):
    requested: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.requested.append(self.path)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path_factory.mktemp("site")
    (root / "static").symlink_to(ROOT / "static")
    (root / "index.html").write_text("<!doctype html><title>runner</title>")
    (root / "kernels").mkdir()
    requested: list[str] = []
    handler = type("LoggingHandler", (Handler,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", root / "kernels", requested
    server.shutdown()


@pytest.fixture(scope="module")
def page(site):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"{site[0]}/index.html")
        yield page
        browser.close()


def publish(site, name: str, data: bytes) -> tuple[str, str]:
    """Serve `data` as kernels/`name`; returns its URL path and sha256."""
    (site[1] / name).write_bytes(data)
    return f"/kernels/{name}", hashlib.sha256(data).hexdigest()


def app(site, kernel: bytes, wasm: bytes | None = None, name: str = "kernel") -> dict[str, Any]:
    kernel_url, kernel_sha = publish(site, f"{name}.js", kernel)
    wasm_url, wasm_sha = publish(site, f"{name}.wasm", wasm) if wasm else (None, None)
    return {
        "kernel_url": kernel_url,
        "kernel_sha256": kernel_sha,
        "wasm_url": wasm_url,
        "wasm_sha256": wasm_sha,
    }


def run_task(page, app: dict[str, Any], input: Any, share: float = 1.0) -> dict[str, Any]:
    return page.evaluate(RUN_TASK, {"task": {"app": app, "input": input}, "share": share})


@pytest.mark.parametrize("wasm", [True, False], ids=["wasm", "javascript"])
def test_mandelbrot_runs_in_the_worker_as_the_reference_computes_it(page, site, wasm):
    example = EXAMPLES["mandelbrot"]
    tile = mandelbrot.demo_inputs()[1]
    wasm_bytes = example.wasm_bytes() if wasm else None
    kernel = example.kernel_source().encode()
    reply = run_task(page, app(site, kernel, wasm_bytes, name=f"mandelbrot-{wasm}"), tile)
    assert reply.get("result") == mandelbrot.run(tile)
    assert reply["cpu_time"] > 0
    assert reply["progress"][-1] == 1
    assert reply["progress"] == sorted(reply["progress"])


def test_abc_triples_runs_in_the_worker(page, site):
    source = EXAMPLES["abc-triples"].kernel_source().encode()
    reply = run_task(page, app(site, source, name="abc"), {"c_lo": 1, "c_hi": 20_000})
    assert reply.get("result") == abc_triples.run({"c_lo": 1, "c_hi": 20_000})


def test_a_kernel_whose_bytes_do_not_match_its_hash_is_refused(page, site):
    kernel = app(site, PROBE.encode(), name="tampered")
    (site[1] / "tampered.js").write_text(PROBE + "// changed after publishing\n")
    reply = run_task(page, kernel, ["fetch"])
    assert reply == {
        "error": True,
        "reason": "kernel hash mismatch",
        "progress": [],
        "wall": reply["wall"],
    }


def test_a_wasm_module_whose_bytes_do_not_match_is_refused(page, site):
    example = EXAMPLES["mandelbrot"]
    bad = app(site, example.kernel_source().encode(), example.wasm_bytes(), name="badwasm")
    (site[1] / "badwasm.wasm").write_bytes(example.wasm_bytes() + b"\0")
    reply = run_task(page, bad, mandelbrot.demo_inputs()[1])
    assert reply["reason"] == "wasm hash mismatch"


def test_kernels_get_no_network_storage_or_messaging(page, site):
    forbidden = [
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "EventSource",
        "importScripts",
        "indexedDB",
        "caches",
        "BroadcastChannel",
        "Worker",
        "navigator",
        "postMessage",
        "close",
    ]
    kept = ["WebAssembly", "setTimeout", "Math", "crypto"]
    reply = run_task(page, app(site, PROBE.encode(), name="probe"), forbidden + kept)
    assert reply["result"] == {
        **dict.fromkeys(forbidden, "undefined"),
        "WebAssembly": "object",
        "setTimeout": "function",
        "Math": "object",
        "crypto": "object",
    }


def test_a_worker_fetches_each_kernel_once(page, site):
    kernel = app(site, SPIN.encode(), name="twice")
    reply = page.evaluate(
        """async ({ app }) => {
          const worker = new Worker("/static/socialgrid/worker/runner.js", { type: "module" });
          const results = [];
          for (const steps of [1, 2]) {
            results.push(await new Promise((resolve) => {
              worker.onmessage = ({ data }) => { if (!("progress" in data)) resolve(data.result); };
              worker.postMessage({ task: { app, input: { steps, ms: 1 } }, share: 1 });
            }));
          }
          worker.terminate();
          return results;
        }""",
        {"app": kernel},
    )
    assert reply == [1, 2]
    assert site[2].count("/kernels/twice.js") == 1


def test_the_cpu_share_stretches_the_wall_time_but_not_the_cpu_time(page, site):
    kernel = app(site, SPIN.encode(), name="spin")
    work = {"steps": 10, "ms": 20}  # 0.2 s busy
    full = run_task(page, kernel, work, share=1.0)
    quarter = run_task(page, kernel, work, share=0.25)
    for reply in (full, quarter):
        assert reply["cpu_time"] >= 0.19, reply  # at least the busy loop's time
    # Busy for a quarter of the time: sleeping three times as long as it ran, and the sleeps
    # are not counted as CPU time. (That a full share never sleeps is throttle.test.mjs's.)
    assert quarter["wall"] >= 3.5 * quarter["cpu_time"]


def test_a_new_share_reaches_the_running_task(page, site):
    kernel = app(site, SPIN.encode(), name="reshare")
    outcome = page.evaluate(
        """async ({ app }) => new Promise((resolve) => {
          const worker = new Worker("/static/socialgrid/worker/runner.js", { type: "module" });
          worker.onmessage = ({ data }) => {
            if ("progress" in data) return;
            worker.terminate();
            resolve("finished");
          };
          // 0.2 s of work at the lowest share, 1 %, sleeps for 19.8 s at least; full speed
          // from 0.3 s on. The task still running after those 19.8 s never got the new share.
          worker.postMessage({ task: { app, input: { steps: 10, ms: 20 } }, share: 0.01 });
          setTimeout(() => worker.postMessage({ share: 1 }), 300);
          setTimeout(() => { worker.terminate(); resolve("still at 1 %"); }, 19800);
        })""",
        {"app": kernel},
    )
    assert outcome == "finished"
