"""The integration level: PostgreSQL, Redis and real Celery worker processes.

Run with ``DATABASE_URL`` and ``REDIS_URL`` set (the Makefile's ``test-integration``). A
missing service fails the run when ``SOCIALGRID_REQUIRE`` names this level.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _services_configured(redis_url: str) -> None:
    required = "integration" in os.environ.get("SOCIALGRID_REQUIRE", "")
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL does not point at PostgreSQL")
    if not settings.REDIS_URL:
        problems.append("REDIS_URL is not set")
    if problems:
        message = "integration level needs services: " + "; ".join(problems)
        if required:
            pytest.fail(message)
        pytest.skip(message)


def _test_database_url() -> str:
    """The URL of pytest-django's test database, for processes started by a test."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        PYTHONPATH=str(ROOT),
        SWEEP_TRANSITIONER_SECONDS="1",
        SWEEP_FEEDER_SECONDS="1",
        SWEEP_VALIDATOR_SECONDS="2",
        SWEEP_ASSIMILATOR_SECONDS="2",
    )
    return env


def start_worker(
    env: dict[str, str], log: Path, *, beat: bool = True, name: str = "w1"
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "socialgrid",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "-n",
        f"{name}@%h",
        "-Q",
        env["CELERY_QUEUE"],
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        command += ["-B", "-s", str(log.parent / f"beat-{name}")]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def wait_until_ready(log: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{log.read_text()}")
        if "ready." in log.read_text():
            return
        time.sleep(0.2)
    raise RuntimeError(f"celery worker not ready after {timeout}s:\n{log.read_text()}")


@pytest.fixture
def celery_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A real worker process (with embedded beat) on this run's queue and test database."""
    from compute import feeder

    feeder.get_queue().clear()
    log = tmp_path / "worker.log"
    proc = start_worker(worker_env, log)
    try:
        wait_until_ready(log, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(log.read_text()[-3000:])
