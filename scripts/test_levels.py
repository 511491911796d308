"""Run every test level this machine supports, each in its own pytest session.

- unit: embedded defaults (SQLite, in-process everything); always.
- integration: PostgreSQL + Redis + Celery worker processes; when both services answer,
  or always when SOCIALGRID_REQUIRE names it (then a missing service fails the run).
- browser: Debian's Chromium driven by Playwright; when /usr/bin/chromium exists, or always
  when required.

Extra arguments go to every pytest run (e.g. ``-x`` or ``-k name``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
# The Django cache in its own database: tests clear it, which flushes that whole database.
CACHE_URL = os.environ.get("TEST_CACHE_URL", "redis://127.0.0.1:6379/2")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LEVEL_TIMEOUT = int(os.environ.get("TEST_LEVEL_TIMEOUT", "2400"))


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


NO_TESTS = 5  # pytest's exit code when it collected nothing


def passed(code: int) -> bool:
    """Only a run whose tests all passed: a level that collected nothing (a filter that
    matches no test, a marker gone wrong) fails too, or it would go unnoticed."""
    return code == 0


def levels(required: set[str]) -> list[str]:
    chosen = ["unit"]
    if "integration" in required or (answers("127.0.0.1", 5432) and answers("127.0.0.1", 6379)):
        chosen.append("integration")
    if "browser" in required or Path(CHROMIUM).exists():
        chosen.append("browser")
    return chosen


def run(level: str, extra: list[str], required: set[str]) -> int:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.pop("CACHE_URL", None)
    env["SOCIALGRID_REQUIRE"] = ",".join(sorted(required))
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    if level == "unit":
        args += ["-m", "not integration and not browser"]
    elif level == "integration":
        # The whole engine suite again on the production shape, plus the service tests.
        env.update(
            DATABASE_URL=DATABASE_URL,
            REDIS_URL=REDIS_URL,
            CACHE_URL=CACHE_URL,
            CELERY_QUEUE=f"sg-test-{os.getpid()}",
            SOCIALGRID_REQUIRE=",".join(sorted(required | {"integration"})),
        )
        args += ["-m", "not browser"]
    else:
        env["SOCIALGRID_REQUIRE"] = ",".join(sorted(required | {"browser"}))
        args += ["-m", "browser"]
    print(f"\n=== {level} tests ===", flush=True)
    started = time.monotonic()
    try:
        code = subprocess.call(args + extra, cwd=ROOT, env=env, timeout=LEVEL_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"=== {level}: stopped after {LEVEL_TIMEOUT} s")
        return 1
    verdict = "passed" if passed(code) else "FAILED"
    if code == NO_TESTS:
        verdict += " (no tests collected)"
    print(f"=== {level}: {verdict} in {time.monotonic() - started:.0f}s")
    return code


def main() -> int:
    required = {s for s in os.environ.get("SOCIALGRID_REQUIRE", "").split(",") if s}
    extra = sys.argv[1:]
    results = {level: run(level, extra, required) for level in levels(required)}
    failed = [level for level, code in results.items() if not passed(code)]
    summary = ", ".join(f"{lvl} ({'failed' if lvl in failed else 'ok'})" for lvl in results)
    print(f"\nlevels run: {summary}")
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        print("browser level not run: no Chromium (apt-get install -y chromium)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
