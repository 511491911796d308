"""Fuzzing the volunteer protocol at volume: hostile messages through the real ASGI
application, in process.

    .venv/bin/python -m bench.fuzz_protocol --messages 100000 [--db-check-every 10]

The generators of tests/compute/test_protocol_fuzz.py (tests/compute/protocol_fuzz_strategies.py)
drive the project's ASGI application (the router, origin check and WorkerConsumer) through
channels' WebsocketCommunicator, one connection per generated sequence, until ``--messages``
frames have been sent. Embedded settings: SQLite in a temporary directory (migrated at the
start), the in-memory channel layer, Celery eager. Limits are the defaults but for the
message rate (unlimited, so that messages reach the parser), the message size (4 KiB) and
the stored output (1 KiB), so that oversized frames and outputs are cheap to send.

Every answer is judged as in the tests: a server message valid against
docs/protocol.schema.json with a documented error code other than ``server_error``, or a
close with a documented close code; a message the client schema refuses is refused; a
refused message changes nothing in the database (the replicas it names or holds, replica
counts per state, credit, hosts), checked around one message in ``--db-check-every`` (the
check costs about as much as the message; 1 checks every message, 0 none). The table gives
messages sent, answers by type and code, closes by code, unhandled exceptions and ERROR log
records (both must be 0), throughput and the machine. The exit code is 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 4096
LIMITS = {
    "PROTOCOL_MAX_MESSAGE_BYTES": str(MAX_BYTES),
    "PROTOCOL_MESSAGES_PER_SECOND": "1000000000",
    "MAX_OUTPUT_BYTES": "1024",
}
BATCH = 200  # sequences per hypothesis run
SHOW_FAILURES = 10


class ErrorLogs(logging.Handler):
    """Counts ERROR records from any logger (the consumer logs unhandled failures)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < SHOW_FAILURES:
            self.first.append(f"{record.name}: {record.getMessage()[:300]}")


def configure(var_dir: str) -> None:
    """Embedded settings on a fresh SQLite database; must run before django.setup()."""
    sys.path.insert(0, str(ROOT))
    for name in ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ["SOCIALGRID_VAR_DIR"] = var_dir
    os.environ.update(LIMITS)
    os.environ["DJANGO_SETTINGS_MODULE"] = "socialgrid.settings"

    import django

    django.setup()

    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run(messages: int, check_db: int) -> int:
    from hypothesis import HealthCheck, Phase, given, settings

    from socialgrid.asgi import application
    from tests.compute import protocol_fuzz_strategies as fuzz

    world = fuzz.setup_world()
    oracle = fuzz.Oracle()
    tally = fuzz.Tally()
    errors = ErrorLogs()
    logging.getLogger().addHandler(errors)
    logging.getLogger("celery").setLevel(logging.WARNING)  # a line per eager task otherwise
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    config = settings(
        max_examples=BATCH,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )

    @config
    @given(sequence=fuzz.sequences(min_after=10, max_after=40))
    def one(sequence: fuzz.Sequence) -> None:
        if tally.sent >= messages:
            return
        fuzz.top_up_work(world.project_id)
        loop.run_until_complete(
            fuzz.run_sequence(
                application, sequence, world, oracle, tally, max_bytes=MAX_BYTES, check_db=check_db
            )
        )

    load_before = os.getloadavg()
    started = time.perf_counter()
    last_status = started
    while tally.sent < messages:
        one()
        now = time.perf_counter()
        if now - last_status > 10:
            last_status = now
            print(
                f"  {tally.sent} messages, {tally.sent / (now - started):.0f}/s,"
                f" {len(tally.failures)} failures",
                file=sys.stderr,
            )
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    loop.close()
    logging.getLogger().removeHandler(errors)

    print(table(tally, errors, elapsed, load_before, load_after, check_db))
    for problem in [*tally.failures[:SHOW_FAILURES], *errors.first]:
        print(f"FAIL {problem}")
    ok = not tally.failures and not tally.exceptions and not errors.count
    return 0 if ok else 1


def table(tally, errors: ErrorLogs, elapsed: float, before, after, check_db: int) -> str:
    import django

    rows: list[tuple[str, str]] = [
        ("messages sent", f"{tally.sent}"),
        ("connections (sequences)", f"{tally.sequences}"),
        ("elapsed", f"{elapsed:.1f} s"),
        ("throughput", f"{tally.sent / elapsed:.0f} messages/s"),
        ("database check", f"around 1 message in {check_db}" if check_db else "off"),
    ]
    for (kind, code), n in sorted(tally.replies.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append((f"answer {kind}{' ' + code if code else ''}", f"{n}"))
    for code, n in sorted(tally.closes.items()):
        rows.append((f"close {code}", f"{n}"))
    for kind, n in sorted(tally.unsolicited.items()):
        rows.append((f"unsolicited {kind}", f"{n}"))
    rows += [
        ("unhandled exceptions", f"{tally.exceptions}"),
        ("ERROR log records", f"{errors.count}"),
        ("undefined answers / failures", f"{len(tally.failures)}"),
        ("cores", f"{os.cpu_count()}"),
        ("load average before", " ".join(f"{x:.2f}" for x in before)),
        ("load average after", " ".join(f"{x:.2f}" for x in after)),
        ("machine", f"{platform.machine()} {platform.processor() or ''}".strip()),
        (
            "versions",
            f"Python {platform.python_version()}, Django {django.get_version()}, SQLite",
        ),
        (
            "limits",
            f"message {MAX_BYTES} B, output 1024 B, rate unlimited, other limits default",
        ),
        (
            "status",
            "PASS" if not (tally.failures or tally.exceptions or errors.count) else "FAIL",
        ),
    ]
    width = max(len(item) for item, _ in rows)
    lines = ["protocol fuzzing", "-" * (width + 40)]
    lines += [f"{item:<{width}}  {value}" for item, value in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--db-check-every", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sg-fuzz-") as var_dir:
        configure(var_dir)
        return run(args.messages, args.db_check_every)


if __name__ == "__main__":
    sys.exit(main())
