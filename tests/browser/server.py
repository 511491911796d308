"""The platform as a subprocess: ``manage.py runplatform`` on embedded defaults.

SQLite in its own SOCIALGRID_VAR_DIR, the in-memory channel layer, Celery tasks and the
periodic sweeps in the server process, with sweep intervals short enough for a test.
Everything a test knows about the database it learns by running management commands with
the server's environment: the pytest process is not connected to that SQLite file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Short sweeps, so a test waits seconds for what production does in minutes. Results are
# validated and assimilated as they arrive (tasks queued on commit); the sweeps catch up.
SERVER_ENV = {
    "SWEEP_FEEDER_SECONDS": "0.5",
    "SWEEP_TRANSITIONER_SECONDS": "1",
    "SWEEP_PROJECT_STATS_SECONDS": "1",
    "SWEEP_VALIDATOR_SECONDS": "2",
    "SWEEP_ASSIMILATOR_SECONDS": "2",
    "SWEEP_CREDIT_FOLD_SECONDS": "5",
    # An empty assign would otherwise hold a volunteer back 20 s.
    "PROTOCOL_RETRY_AFTER_SECONDS": "1",
    # The tests' batches are theirs to count: no demo batch comes after them.
    "DEMO_WORK": "0",
    "PYTHONUNBUFFERED": "1",  # the log must be on disk when the process is killed
    "LOG_LEVEL": "INFO",
}
SERVICES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
# Several lines a second with the short sweeps; left out of the logs a failure shows.
ROUTINE = re.compile(r"celery\.app\.trace: Task compute\.tasks\.\w+\[[-\w]+\] succeeded")

# The platforms of the running tests, for the failure report (conftest.py).
LIVE_PLATFORMS: list[Platform] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


class Platform:
    """One platform server on a free port, its SQLite database in ``var_dir``."""

    def __init__(self, var_dir: Path, name: str) -> None:
        self.name = name
        self.var_dir = var_dir
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in SERVICES}
        self.env.update(SERVER_ENV, SOCIALGRID_VAR_DIR=str(var_dir), PYTHONPATH=str(ROOT))
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        self.installed: dict[str, dict[str, Any]] = {}  # by project slug

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- management commands ----------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 120) -> str:
        command = [sys.executable, str(ROOT / "manage.py"), *args]
        done = subprocess.run(
            command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def call(self, function: str, **kwargs: Any) -> Any:
        """Run ``tests.browser.scenario.<function>(**kwargs)`` in the platform's database."""
        code = f"from tests.browser import scenario; scenario.{function}(**{kwargs!r})"
        lines = self.manage("shell", "-c", code).strip().splitlines()
        return json.loads(lines[-1])

    def install_mandelbrot(self, **spec: Any) -> dict[str, Any]:
        """A Mandelbrot project and batch (scenario.install_mandelbrot); its slug, ids, size."""
        installed = self.call("install_mandelbrot", **spec)
        self.installed[installed["slug"]] = installed
        return installed

    def status(self, slug: str) -> dict[str, Any]:
        """``compute_status --json`` for one project."""
        out = json.loads(self.manage("compute_status", "--json", "--project", slug))
        return out["projects"][0]

    def export(self, batch_id: int) -> list[dict[str, Any]]:
        """``export_results`` of a batch, as the rows it wrote."""
        return [
            json.loads(line) for line in self.manage("export_results", str(batch_id)).splitlines()
        ]

    # --- the server process -----------------------------------------------------------------

    def start(self, timeout: float = 90) -> float:
        """Start runplatform and wait until /healthz answers; returns the seconds it took."""
        assert self.process is None or self.process.poll() is not None, "already running"
        log = self.var_dir / f"server-{len(self.logs) + 1}.log"
        self.logs.append(log)
        started = time.monotonic()
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "runplatform", "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"runplatform exited with {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            try:
                if fetch(self.url("/healthz"), timeout=2) == b"ok":
                    return time.monotonic() - started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"runplatform did not answer /healthz in {timeout} s:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as when the machine loses the process."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn's graceful shutdown
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 150) -> str:
        """The end of each server log, without the sweeps' routine success lines."""
        parts = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            text = [line for line in text if not ROUTINE.search(line)]
            skipped = f" (last {lines} of {len(text)} lines)" if len(text) > lines else ""
            parts.append(f"--- {log.name}{skipped} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)
