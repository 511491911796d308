"""Performance and scale-out: start a real deployment on this machine, run a fixed workload
through simulated volunteers, and print one table.

    .venv/bin/python -m bench.harness.run [--volunteers 200] [--workunits 2000] [--quorum 2]
        [--task-seconds 0] [--processes 2] [--prefetch 2] [--asgi 2] [--workers 2]

Everything runs as subprocesses against a dedicated PostgreSQL database (dropped and created
at the start, left afterwards for inspection) and Redis database (flushed at the start); the
server processes are started with the Procfile's commands and the settings a deployment has
(unless --sweep or --setting says otherwise). Before the workload, the ceiling of the pieces
under the path is measured (bench/harness/ceiling.py). Logs, the table (table.txt) and every
figure (results.json) go to bench/out/<timestamp>/.
The exit code is 0 only when the batch finished in time and the audit is clean.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import ceiling, check, metrics, report, workload
from bench.harness.deployment import PYTHON, Config, Deployment, DeploymentError, Managed
from bench.harness.services import (
    broker_backlog,
    database_name,
    redis_server_pid,
    redis_version,
)
from bench.harness.volunteers import raise_fd_limit

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "bench" / "out"
SWEEPS = (
    "transitioner", "feeder", "validator", "assimilator", "credit_fold", "cleanup", "decay",
    "project_stats", "rac_badges", "leaderboards",
)  # fmt: skip
POLL_SECONDS = 0.2
CEILING_BATCH = 256  # results per flush in the database ceiling
PROGRESS_EVERY = 5.0
VOLUNTEER_STOP_TIMEOUT = 20.0


class HarnessError(RuntimeError):
    pass


# --- options --------------------------------------------------------------------------------


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value.strip()


def add_deployment_options(
    p: argparse.ArgumentParser, *, database_url: str, redis_url: str, setting_example: str
) -> None:
    """The options every bench that starts a deployment shares."""
    p.add_argument(
        "--setting",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"an extra environment setting for every process (e.g. {setting_example})",
    )
    p.add_argument("--database-url", default=database_url)
    p.add_argument("--redis-url", default=redis_url)
    p.add_argument("--port-base", type=int, default=0, help="first ASGI port (0: any free)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent of the run directory")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.harness.run", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--volunteers", type=int, default=200, help="simulated volunteers")
    p.add_argument("--workunits", type=int, default=2000, help="work units in the batch")
    p.add_argument("--quorum", type=int, default=2, help="min_quorum = target_nresults")
    p.add_argument("--task-seconds", type=float, default=0.0, help="0: return at once")
    p.add_argument(
        "--task-jitter",
        type=float,
        default=0.0,
        help="each task lasts task-seconds x uniform(1 - j, 1 + j), so volunteers drift apart",
    )
    p.add_argument("--processes", type=int, default=2, help="volunteer client processes")
    p.add_argument("--prefetch", type=int, default=2, help="tasks each volunteer holds")
    p.add_argument("--asgi", type=int, default=2, help="web processes (Procfile web)")
    p.add_argument("--workers", type=int, default=2, help="Celery workers (Procfile worker)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the workload")
    p.add_argument("--ramp", type=float, default=1.0, help="seconds over which clients start")
    p.add_argument(
        "--sweep",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help=f"a sweep interval ({', '.join(SWEEPS)}) other than the deployment's",
    )
    p.add_argument(
        "--ceiling-seconds",
        type=float,
        default=4.0,
        help="the bare WebSocket endpoint's measuring window (0: not measured)",
    )
    p.add_argument(
        "--ceiling-rows",
        type=int,
        default=4096,
        help="results recorded through the flush for the database ceiling (0: not measured)",
    )
    add_deployment_options(
        p,
        database_url="postgres://postgres@127.0.0.1:5432/sg_bench_run",
        redis_url="redis://127.0.0.1:6379/3",
        setting_example="FEEDER_BATCH=1000",
    )
    args = p.parse_args(argv)
    problems = _check(args)
    if problems:
        p.error("; ".join(problems))
    return args


def _check(args: argparse.Namespace) -> list[str]:
    problems = []
    if args.volunteers < max(1, args.quorum):
        problems.append("--volunteers must be at least --quorum (one replica per host)")
    if not 1 <= args.processes <= args.volunteers:
        problems.append("--processes must be between 1 and --volunteers")
    for name in ("workunits", "quorum", "prefetch", "asgi", "workers"):
        if getattr(args, name) < 1:
            problems.append(f"--{name} must be at least 1")
    if args.prefetch > 64:
        problems.append("--prefetch is at most 64 (the protocol's request limit)")
    if args.task_seconds < 0 or args.timeout <= 0:
        problems.append("--task-seconds must be >= 0 and --timeout > 0")
    if not 0 <= args.task_jitter < 1:
        problems.append("--task-jitter must be in [0, 1)")
    if args.ceiling_seconds < 0 or args.ceiling_rows < 0:
        problems.append("--ceiling-seconds and --ceiling-rows must be >= 0")
    problems += [f"unknown sweep {n!r}" for n, _ in args.sweep if n not in SWEEPS]
    return problems


def make_config(args: argparse.Namespace, run_dir: Path) -> Config:
    # Only what the options say differs from a deployment: no sweep or setting of the bench's own.
    sweeps = {name: float(seconds) for name, seconds in args.sweep}
    return Config(
        run_dir=run_dir,
        out_dir=args.out,
        database_url=args.database_url,
        redis_url=args.redis_url,
        asgi=args.asgi,
        workers=args.workers,
        queue=f"sg-bench-{run_dir.name}",
        prefetch=args.prefetch,
        sweeps=sweeps,
        settings=dict(args.setting),
        port_base=args.port_base,
    )


def make_run_dir(out: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        run_dir = out / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise HarnessError(f"cannot make a run directory in {out}")


# --- the run --------------------------------------------------------------------------------


def setup_django(env: dict[str, str]) -> None:
    """This process reads and audits the bench database with the same settings."""
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    os.environ.update(env)
    import django

    django.setup()


def prepared_workload(dep: Deployment, args: argparse.Namespace) -> workload.Workload:
    """A clean database and Redis, this process set up on them, and the batch of
    ``args.workunits`` work units at ``args.quorum`` created; the processes not started."""
    print("preparing: database, migrations, Redis ...", file=sys.stderr, flush=True)
    dep.prepare()
    setup_django(dep.env())
    return workload.create_workload(args.workunits, args.quorum)


def start_volunteers(dep: Deployment, args: argparse.Namespace, slug: str) -> list[Managed]:
    urls = [f"ws://127.0.0.1:{port}/ws/worker/" for port in dep.ports]
    procs = []
    for i in range(args.processes):
        first = i * args.volunteers // args.processes
        count = (i + 1) * args.volunteers // args.processes - first
        argv = [PYTHON, "-m", "bench.harness.volunteers", "--project", slug,
                "--first", str(first), "--count", str(count),
                "--task-seconds", str(args.task_seconds), "--prefetch", str(args.prefetch),
                "--task-jitter", str(args.task_jitter),
                "--ramp", str(args.ramp),
                "--out", str(dep.config.run_dir / f"volunteers-{i + 1}.json")]  # fmt: skip
        for url in urls:
            argv += ["--url", url]
        procs.append(dep.spawn(f"volunteers-{i + 1}", "volunteers", argv))
    return procs


def service_rows(config: Config) -> list[metrics.Watched]:
    """PostgreSQL (the postmaster, its own processes and this run's backends but the
    bench's own) and Redis; the backend of the bench's own connection, which polls the
    database, is a row of its own, the bench's."""
    from django.db import connection

    out = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    postmaster = metrics.parent_pid(backend)
    if postmaster is not None and "postgres" in metrics.command_line(postmaster):
        db = database_name(config.database_url)

        def ours(pid: int) -> bool:
            name = metrics.postgres_backend_db(pid)
            return pid != backend and (name is None or name == db)

        detail = f"postmaster, server processes and the backends of {db} but the bench's"
        out.append(metrics.Watched("postgresql", "postgresql", postmaster, True, ours, detail))
        out.append(
            metrics.Watched(
                "harness-db", "harness", backend, detail="the backend of this process's polling"
            )
        )
    pid = redis_server_pid(config.redis_url)
    if pid is not None:
        out.append(metrics.Watched("redis", "redis", pid, detail="the whole server (shared)"))
    return out


def wait_for_batch(
    dep: Deployment, volunteers: list[Managed], wl: workload.Workload, timeout: float
) -> tuple[str, str]:
    """Poll the database until every work unit is assimilated; ("ok" | "timeout", why)."""
    started = time.monotonic()
    last_print = started
    while True:
        done, assimilated, errored = workload.progress(wl.batch_id)
        if done >= wl.workunits and assimilated + errored >= wl.workunits:
            return "ok", ""
        dep.check_alive()
        if all(v.popen.poll() is not None for v in volunteers):
            raise HarnessError("every volunteer process exited; see volunteers-*.log")
        now = time.monotonic()
        if now - started > timeout:
            why = f"{done}/{wl.workunits} work units assimilated after {timeout:.0f} s (--timeout)"
            return "timeout", why
        if now - last_print >= PROGRESS_EVERY:
            last_print = now
            print(
                f"[{now - started:6.1f} s] {done}/{wl.workunits} work units assimilated",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(POLL_SECONDS)


def read_tallies(procs: list[Managed]) -> list[dict[str, Any]]:
    tallies = []
    for p in procs:
        path = p.log.with_suffix(".json")
        try:
            tallies.append(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            raise HarnessError(f"{p.name} left no measurements ({e}); see {p.log}") from e
    return tallies


def drive(dep: Deployment, args: argparse.Namespace, wl: workload.Workload) -> dict[str, Any]:
    """Start the volunteers, wait for the batch, and measure; the deployment keeps running."""
    volunteers = start_volunteers(dep, args, wl.project_slug)
    watched = dep.watched() + service_rows(dep.config)
    watched.append(metrics.Watched("harness", "harness", os.getpid(), detail="this process"))
    sampler = metrics.Sampler(watched)
    sampler.start_window()
    status, why = wait_for_batch(dep, volunteers, wl, args.timeout)
    wall, busy, usage = sampler.end_window()
    backlog = broker_backlog(dep.config.redis_url, dep.config.queue)
    dep.stop(roles=["volunteers"], timeout=VOLUNTEER_STOP_TIMEOUT)
    return {
        "status": status,
        "why": why,
        "window_s": wall,
        "machine_busy": busy,
        "usage": usage,
        "backlog": backlog,
        "tallies": read_tallies(volunteers),
    }


def run_record(args: argparse.Namespace, config: Config, run_dir: Path) -> dict[str, Any]:
    """What a bench's results.json starts with: the run, its options and the machine."""
    return {
        "run_dir": str(run_dir),
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "args": args,
        "config": config,
        "machine": metrics.machine(),
        "load_before": metrics.load_average(),
    }


def execute(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    config = make_config(args, run_dir)
    data = run_record(args, config, run_dir)
    with Deployment(config) as dep:
        wl = prepared_workload(dep, args)
        data["machine"].update(service_versions(config))
        data["ceiling"] = measure_ceiling(dep, args)
        print(f"starting {args.asgi} ASGI, {args.workers} worker(s), beat ...", file=sys.stderr)
        dep.start()
        print(
            f"running {args.volunteers} volunteers in {args.processes} process(es) on "
            f"{args.workunits} work units (quorum {args.quorum}) ...",
            file=sys.stderr,
            flush=True,
        )
        data.update(drive(dep, args, wl))
    data["load_after"] = metrics.load_average()
    data["database"] = workload.measure(wl.batch_id)
    data["audit"] = check.audit(wl.batch_id, report.all_acked(data["tallies"]))
    if data["status"] != "ok":
        data["states"] = workload.state_counts(wl.batch_id)
    from django.db import connections

    connections.close_all()
    return data


def measure_ceiling(dep: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    """The bare WebSocket endpoint and the flush's rows/s, before any server process runs."""
    from django.db import connections

    out: dict[str, Any] = {"websocket": None, "database": None}
    # The database ceiling copies the bench database, which nobody may be connected to.
    connections.close_all()
    if args.ceiling_rows:
        print(f"ceiling: {args.ceiling_rows:,} results through the flush ...", file=sys.stderr)
        out["database"] = ceiling.measure_database(dep, rows=args.ceiling_rows, batch=CEILING_BATCH)
    if args.ceiling_seconds:
        connections_n = min(args.volunteers, ceiling.MAX_CONNECTIONS)
        print(
            f"ceiling: bare WebSocket endpoint, {connections_n} connections for "
            f"{args.ceiling_seconds:g} s ...",
            file=sys.stderr,
            flush=True,
        )
        out["websocket"] = ceiling.measure_websocket(
            dep,
            connections=connections_n,
            processes=min(args.processes, connections_n),
            seconds=args.ceiling_seconds,
        )
    return out


def service_versions(config: Config) -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return {"postgresql": pg, "redis": redis_version(config.redis_url)}


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM takes the same way out as Ctrl-C: the deployment is stopped on the way.
    raise KeyboardInterrupt


def guarded_run(
    args: argparse.Namespace,
    run_dir: Path,
    execute: Callable[[argparse.Namespace, Path], dict[str, Any]],
    errors: tuple[type[Exception], ...],
) -> dict[str, Any] | int:
    """``execute`` with Ctrl-C and SIGTERM stopping every process on the way out: its data,
    or the exit code when it was interrupted or failed with one of ``errors``."""
    raise_fd_limit()  # the processes it starts inherit it: one descriptor per socket
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the run cleanly even when a shell started the bench with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"run directory: {run_dir}", file=sys.stderr, flush=True)
    try:
        return execute(args, run_dir)
    except KeyboardInterrupt:
        print(f"interrupted: every process stopped; logs in {run_dir}", file=sys.stderr)
        return 130
    except errors as e:
        print(f"bench failed: {e}\nevery process stopped; logs in {run_dir}", file=sys.stderr)
        return 1


def save_results(run_dir: Path, summary: dict[str, Any], table: str) -> None:
    """table.txt and results.json in the run directory; the table on stdout."""
    (run_dir / "table.txt").write_text(table + "\n")
    (run_dir / "results.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out = args.out.resolve()
    run_dir = make_run_dir(args.out)
    data = guarded_run(args, run_dir, execute, (DeploymentError, HarnessError))
    if isinstance(data, int):
        return data
    summary = report.summarise(data)
    save_results(run_dir, summary, report.table(summary))
    db = database_name(args.database_url)
    print(
        f"\nlogs, table.txt and results.json in {run_dir}\n"
        f"the database {db} is left for inspection (the next run drops it): "
        f"psql -h 127.0.0.1 -U postgres {db}"
    )
    if data["status"] != "ok":
        print(f"\nFAILED: {data['why']}; states: {data.get('states')}", file=sys.stderr)
        return 1
    if not data["audit"].clean:
        print("\nFAILED: the audit found lost, double-credited or stuck work", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
