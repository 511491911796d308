"""Screenshots of the volunteer-facing pages, at phone and desktop widths.

Runs the demo on a temporary SOCIALGRID_VAR_DIR (``migrate``, ``seed_demo``, then
``runplatform`` on a free port) and saves full-page screenshots into var/screenshots/:

- ``home-375.png``, ``project-375.png``, ... : the demo as seeded (nothing computed yet);
- ``*-active-*.png``: after simulated volunteers have returned part of the Mandelbrot batch
  (the tiles are computed by the app's real kernel in Chromium and reported through the
  engine's domain functions) and hold the rest in progress;
- ``*-active-dark-1280.png``: the same in the dark colour scheme;
- ``project-signed-in-375.png``: the project page of a signed-in volunteer;
- ``project-running-*.png``: a few seconds after pressing Start (the browser computing).

    .venv/bin/python scripts/screenshots.py [--out DIR]

Needs Playwright for Python and Debian's Chromium (CHROMIUM, default /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORTS = [(375, 812), (1280, 800)]
PAGES = {"home": "/", "project": "/projects/mandelbrot/"}
# Three hosts of 8 cores lease 16 replicas each: the first replica of all 30 tiles and the
# second of 18 (the dispatch queue hands out first replicas first), so the top three rows can
# be validated, 12 tiles stay in progress and 12 second replicas are left for the browser.
VOLUNTEERS = ["ada", "grace", "katherine"]
LEASE_EACH = 16
TILES_RETURNED = 18
RUNNING_TIMEOUT_MS = 20_000

# Run by `manage.py shell`: simulated volunteers lease every Mandelbrot replica they may take.
LEASE = """
import json
from django.contrib.auth import get_user_model
from django.utils import timezone
from compute.models import Host, Membership, Project
from compute.scheduler import lease_replicas

project = Project.objects.get(slug="mandelbrot")
leased = []
for n, name in enumerate(NAMES):
    user, _ = get_user_model().objects.get_or_create(
        username=name, defaults={"email": name + "@example.org"}
    )
    Membership.objects.get_or_create(user=user, project=project)
    host = Host.objects.create(
        user=user, name=name + "'s laptop", cores=8, has_wasm=True,
        benchmark_fpops=(2 + n) * 1e9, last_seen=timezone.now(),
    )
    for a in lease_replicas(host, LEASE_EACH):
        leased.append({"host": host.id, "replica": a.replica_id, "lease": a.lease_token,
                       "workunit": a.workunit_id, "input": a.input, "kernel_url": a.kernel_url})
print(json.dumps(leased))
"""

# Run by `manage.py shell` with the computed results on stdin: report them, then run the
# validator and assimilator as the sweeps would.
REPORT = """
import json, sys
from compute.assimilation import assimilate_pending
from compute.models import Host
from compute.results import record_result
from compute.validation import validate_pending

for r in json.load(sys.stdin):
    host = Host.objects.get(id=r["host"])
    receipt = record_result(host, r["replica"], r["lease"], r["output"], r["cpu_time"])
    assert receipt.accepted, receipt
validate_pending()
assimilate_pending()
"""

# Evaluated in the page: import the kernel the site serves and run it on each input.
COMPUTE = """
async ({kernelUrl, inputs}) => {
  const kernel = await import(kernelUrl);
  const outputs = [];
  for (const input of inputs) {
    outputs.push(await kernel.run(input, () => Promise.resolve(), {wasm: null}));
  }
  return outputs;
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """The demo platform on a temporary var directory."""

    def __init__(self, var_dir: Path, password: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(SOCIALGRID_VAR_DIR=str(var_dir), PYTHONPATH=str(ROOT))
        self.password = password
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen | None = None

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise SystemExit(f"manage.py {args[0]} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("seed_demo", "--password", self.password)
        self.serve()

    def restart(self) -> None:
        """A new server process: its in-process dispatch cache is rebuilt from the database,
        without the entries of replicas that another process leased."""
        self.stop()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.serve()

    def serve(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runplatform", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"the server did not answer on {self.url} within 30 s")

    def stop(self) -> None:
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGINT)
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def shell(self, code: str, stdin: str | None = None) -> str:
        return self.manage("shell", "-c", code, stdin=stdin)


async def simulate_volunteers(demo: Demo, browser: Any) -> None:
    """Volunteers lease part of the batch and return both replicas of its first tiles."""
    setup = f"NAMES = {VOLUNTEERS!r}\nLEASE_EACH = {LEASE_EACH}\n"
    leased = json.loads(demo.shell(setup + LEASE).strip().splitlines()[-1])
    # Tiles whose two replicas (the demo's quorum) are both out can be validated.
    copies = Counter(r["workunit"] for r in leased)
    workunits = sorted(wu for wu, n in copies.items() if n >= 2)[:TILES_RETURNED]
    inputs = {r["workunit"]: r["input"] for r in leased if r["workunit"] in workunits}
    page = await browser.new_page()
    await page.goto(demo.url + "/")
    outputs = await page.evaluate(
        COMPUTE,
        {"kernelUrl": demo.url + leased[0]["kernel_url"], "inputs": list(inputs.values())},
    )
    await page.close()
    by_workunit = dict(zip(inputs, outputs, strict=True))
    results = [
        {**r, "output": by_workunit[r["workunit"]], "cpu_time": 40.0}
        for r in leased
        if r["workunit"] in by_workunit
    ]
    demo.shell(REPORT, stdin=json.dumps(results))
    demo.restart()
    print(f"simulated: {len(results)} results for {len(workunits)} tiles, rest in progress")


async def shoot(
    browser: Any, url: str, path: Path, width: int, height: int, scheme: str = "light"
) -> None:
    context = await browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=scheme
    )
    page = await context.new_page()
    await page.goto(url, wait_until="load")
    await page.wait_for_timeout(500)  # project.js tries the socket, then polls once
    await page.screenshot(path=str(path), full_page=True)
    await context.close()
    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


async def shoot_running(browser: Any, url: str, path: Path, width: int, height: int) -> None:
    """Press Start and take the screenshot while the page computes a task."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    await page.goto(url, wait_until="load")
    await page.click("[data-volunteer] [data-action=start]")
    try:
        # A tile takes a fraction of a second: catch one in the task list.
        await page.wait_for_function(
            "document.querySelector('[data-volunteer] [data-tasks]').children.length > 0",
            timeout=RUNNING_TIMEOUT_MS,
            polling=50,
        )
    except Exception as e:  # the picture of a failure is worth having too
        print(f"no task showed up in the volunteer panel: {e}")
    await page.screenshot(path=str(path), full_page=True)
    await context.close()
    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


async def sign_in(browser: Any, demo: Demo, width: int, height: int) -> Any:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    await page.goto(demo.url + "/accounts/login/")
    await page.fill("input[name=login]", "admin")
    await page.fill("input[name=password]", demo.password)
    await page.click("form [type=submit]")
    await page.wait_for_load_state("load")
    return context


async def take_all(demo: Demo, out: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for state in ("", "-active"):
                if state:
                    await simulate_volunteers(demo, browser)
                for width, height in VIEWPORTS:
                    for name, path in PAGES.items():
                        target = out / f"{name}{state}-{width}.png"
                        await shoot(browser, demo.url + path, target, width, height)
            for name, path in PAGES.items():
                target = out / f"{name}-active-dark-1280.png"
                await shoot(browser, demo.url + path, target, 1280, 800, scheme="dark")
            context = await sign_in(browser, demo, 375, 812)
            page = await context.new_page()
            await page.goto(demo.url + PAGES["project"], wait_until="load")
            await page.wait_for_timeout(500)
            target = out / "project-signed-in-375.png"
            await page.screenshot(path=str(target), full_page=True)
            print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
            await context.close()
            for width, height in VIEWPORTS:
                target = out / f"project-running-{width}.png"
                await shoot_running(browser, demo.url + PAGES["project"], target, width, height)
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="socialgrid-shots-") as var_dir:
        demo = Demo(Path(var_dir), secrets.token_urlsafe(12))
        try:
            demo.start()
            asyncio.run(take_all(demo, args.out))
        finally:
            demo.stop()


if __name__ == "__main__":
    main()
