"""The fault drill: a real deployment under load, its processes killed and its services cut
one after another, and a check over the whole database at the end.

    .venv/bin/python -m bench.faults [--volunteers 40] [--workunits 2000] [--task-seconds 1]
        [--faults asgi,worker-validate,worker-assimilate,redis-flush,redis-restart,postgres]

The deployment is the bench's (bench/harness/deployment.py): two uvicorn processes, two
Celery workers and beat, on a PostgreSQL database of its own (``sg_bench_faults``) and on a
Redis server of its own (a private ``redis-server`` on a free port, so that it can be killed).
Simulated volunteers (bench/harness/volunteers.py) compute the batch; each knows both ASGI
addresses, as a load balancer would, and reconnects as the same host to whichever answers.

Once a fifth of the results are in, the faults fire in the order given, each after the one
before has recovered:

- ``asgi``: SIGKILL of one uvicorn process. Its volunteers reconnect to the other process
  and resume the replicas the server still leases to them. Once work flows again, the
  process is started again, as a supervisor would.
- ``worker-validate`` / ``worker-assimilate``: SIGKILL of the Celery worker that is running
  a validation (assimilation) drain at that moment, seen in its log as received and not yet
  finished; it is started again. The task, never acknowledged, is delivered again to a worker
  (late acknowledgement, ``CELERY_VISIBILITY_TIMEOUT``).
- ``redis-flush``: FLUSHALL: the dispatch cache, the broker's queue, the channel layer's
  groups and the cache are gone. The feeder rebuilds the dispatch cache from PostgreSQL.
- ``redis-restart``: SIGKILL of the Redis server, down for ``--outage`` seconds, then started
  again, empty. Every process reconnects by itself.
- ``postgres``: every connection to the database is terminated by the server
  (``pg_terminate_backend``). Calls on those connections fail with the database's error; the
  next ones reconnect, with no process restarted.

After each fault the drill waits until results and assimilations flow again (the recovery
times in the table). At the end every work unit must be assimilated, and the audit
(bench/harness/check.py, plus the exactly-once checks here) must find 0 lost results, 0
double credit and 0 work units stuck. Logs, table.txt and results.json go to
bench/out/<timestamp>/; the exit code is 0 only when every fault fired, the batch finished
and the audit is clean.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import check, metrics, report, workload
from bench.harness.deployment import Config, Deployment, DeploymentError, Managed
from bench.harness.redis_server import PrivateRedis, RedisServerError
from bench.harness.run import (
    HarnessError,
    add_deployment_options,
    guarded_run,
    make_run_dir,
    prepared_workload,
    read_tallies,
    run_record,
    save_results,
    start_volunteers,
)
from bench.harness.services import database_name

FAULTS = (
    "asgi", "worker-validate", "worker-assimilate", "redis-flush", "redis-restart", "postgres",
)  # fmt: skip
REDIS_DB = 3
POLL = 0.05
FIRE_AFTER = 0.2  # of the results, before the first fault
TASK_LINE = re.compile(
    r"^\[(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
    r"Task (?P<task>[\w.]+)\[(?P<id>[0-9a-f-]+)\] (?P<what>received|succeeded|retry|raised)"
)
DRAINS = {
    "worker-validate": "compute.tasks.drain_validation",
    "worker-assimilate": "compute.tasks.drain_assimilation",
}


Then = Callable[[], None]  # what a fault does once work flows again (restart the process)


class FaultError(RuntimeError):
    """A fault could not be provoked, or the deployment did not recover from it."""


@dataclass
class Fault:
    name: str
    at: float = 0.0  # epoch seconds
    at_monotonic: float = field(default=0.0, repr=False)
    results_before: int = 0
    results_recovered_s: float | None = None
    assimilated_recovered_s: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


# --- options --------------------------------------------------------------------------------


def _faults(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"faults are among {', '.join(FAULTS)}; got {text!r}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--volunteers", type=int, default=40)
    p.add_argument("--processes", type=int, default=1, help="volunteer client processes")
    p.add_argument("--workunits", type=int, default=2000)
    p.add_argument("--quorum", type=int, default=2)
    p.add_argument("--task-seconds", type=float, default=1.0)
    p.add_argument("--task-jitter", type=float, default=0.3)
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--faults", type=_faults, default=list(FAULTS))
    p.add_argument("--outage", type=float, default=2.0, help="seconds Redis is down")
    p.add_argument(
        "--recovery-timeout", type=float, default=120.0, help="for work to flow after a fault"
    )
    p.add_argument("--find-timeout", type=float, default=60.0, help="for a drain to kill")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole batch")
    p.add_argument("--stall", type=float, default=60.0, help="seconds without progress: failed")
    p.add_argument("--visibility-timeout", type=int, default=10, help="CELERY_VISIBILITY_TIMEOUT")
    p.add_argument("--ramp", type=float, default=2.0)
    add_deployment_options(
        p,
        database_url="postgres://postgres@127.0.0.1:5432/sg_bench_faults",
        redis_url="",
        setting_example="ASGI_DB_THREADS=2",
    )
    p.add_argument("--redis-server", default=None, help="the redis-server binary")
    args = p.parse_args(argv)
    if args.volunteers < args.quorum or args.quorum < 1 or args.workunits < 1:
        p.error("--volunteers must be at least --quorum, and both and --workunits positive")
    if not 1 <= args.processes <= args.volunteers:
        p.error("--processes must be between 1 and --volunteers")
    if args.redis_url:
        p.error("the drill runs its own Redis server (it kills it); --redis-url is not taken")
    return args


def make_config(args: argparse.Namespace, run_dir: Path, redis_url: str) -> Config:
    settings = {
        "CELERY_VISIBILITY_TIMEOUT": str(args.visibility_timeout),
        "CELERY_RESTORE_SECONDS": "2",
        # The drill reads how each task ended from the workers' logs.
        "TASK_LOG_LEVEL": "INFO",
        **dict(args.setting),
    }
    return Config(
        run_dir=run_dir,
        out_dir=args.out,
        database_url=args.database_url,
        redis_url=redis_url,
        asgi=2,
        workers=2,
        queue=f"sg-faults-{run_dir.name}",
        prefetch=args.prefetch,
        sweeps={"validator": 2.0, "assimilator": 2.0, "feeder": 1.0, "transitioner": 2.0},
        settings=settings,
        port_base=args.port_base,
    )


# --- progress -------------------------------------------------------------------------------


def counts(batch_id: int) -> tuple[int, int]:
    """(results recorded, work units assimilated) in the batch, read fresh."""
    from django.db import connection

    from compute.models import Replica, WorkUnit
    from compute.states import AssimilateState, Outcome

    try:
        results = Replica.objects.filter(
            workunit__batch_id=batch_id, outcome=Outcome.SUCCESS
        ).count()
        done = WorkUnit.objects.filter(
            batch_id=batch_id, assimilate_state=AssimilateState.DONE
        ).count()
    except Exception:
        connection.close()  # the drill's own connection may be one that was cut
        raise
    return results, done


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise FaultError(f"{what}: not within {timeout:.0f} s")
        time.sleep(POLL)
    return time.monotonic() - started


def wait_recovered(fault: Fault, dep: Deployment, batch_id: int, args: argparse.Namespace) -> None:
    """Until results and assimilations move past what they were when the fault fired."""
    step = max(10, args.volunteers // 2)
    results0, done0 = fault.results_before, counts(batch_id)[1]
    started = time.monotonic()
    total = args.workunits
    while fault.results_recovered_s is None or fault.assimilated_recovered_s is None:
        results, done = counts(batch_id)
        now = time.monotonic() - started
        if fault.results_recovered_s is None and (
            results >= results0 + step or results >= total * args.quorum
        ):
            fault.results_recovered_s = now + (started - fault.at_monotonic)
        if fault.assimilated_recovered_s is None and (done >= done0 + step or done >= total):
            fault.assimilated_recovered_s = now + (started - fault.at_monotonic)
        if now > args.recovery_timeout:
            raise FaultError(
                f"{fault.name}: work did not flow again within {args.recovery_timeout:.0f} s "
                f"(results {results0} -> {results}, assimilated {done0} -> {done})"
            )
        dep.check_alive()
        time.sleep(POLL)


def wait_for_batch(
    dep: Deployment, wl: workload.Workload, args: argparse.Namespace, started: float
) -> None:
    """Until every work unit is assimilated; a batch that stops moving for ``--stall``
    seconds (replicas leased and never computed, work units never validated) fails the run
    at once, with where the work units stand."""
    last, moved = None, time.monotonic()
    while True:
        now_counts = counts(wl.batch_id)
        if now_counts[1] >= wl.workunits:
            return
        dep.check_alive()
        if now_counts != last:
            last, moved = now_counts, time.monotonic()
        stalled = time.monotonic() - moved > args.stall
        if stalled or time.monotonic() - started > args.timeout:
            why = f"stalled for {args.stall:.0f} s" if stalled else "--timeout reached"
            raise FaultError(
                f"the batch was not assimilated ({why}): {workload.state_counts(wl.batch_id)}"
            )
        time.sleep(POLL * 4)


# --- the faults -----------------------------------------------------------------------------


def by_name(dep: Deployment, name: str) -> Managed:
    return next(p for p in dep.processes if p.name == name)


def restart(dep: Deployment, p: Managed, args: argparse.Namespace) -> Managed:
    """What a supervisor does: the same command again, under a new name."""
    again = dep.respawn(p, p.name + "+")
    dep.wait_ready(again)
    return again


def kill_asgi(dep: Deployment, fault: Fault, args: argparse.Namespace, **_: Any) -> Then:
    victim = next(p for p in dep.processes if p.role == "asgi")
    fault.evidence.update(process=victim.name, port=victim.port)
    dep.kill(victim)

    def then() -> None:
        fault.evidence["restarted_as"] = restart(dep, victim, args).name

    return then


def task_lines(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [m.groupdict() for m in map(TASK_LINE.match, text.splitlines()) if m]


def running_task(p: Managed, task: str) -> str | None:
    """The id of a ``task`` this worker received and has not finished, from its log."""
    open_ids: dict[str, None] = {}
    for line in task_lines(p.log):
        if line["task"] != task and line["id"] not in open_ids:
            continue
        if line["what"] == "received" and line["task"] == task:
            open_ids[line["id"]] = None
        else:
            open_ids.pop(line["id"], None)
    return next(iter(open_ids), None)


def database_ports(pid: int) -> list[int]:
    """The local ports of this process's connections to PostgreSQL (port 5432), from /proc."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes and fields[2].endswith(":1538"):  # remote port 5432
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def open_write_transaction(pid: int) -> str | None:
    """What the process's database connection is doing, if it is inside a transaction that
    has written something and not committed."""
    from django.db import connection

    ports = database_ports(pid)
    if not ports:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, left(query, 120) FROM pg_stat_activity WHERE client_port = ANY(%s) "
            "AND datname = current_database() AND backend_xid IS NOT NULL",
            [ports],
        )
        row = cursor.fetchone()
    return f"{row[0]}: {row[1]}" if row else None


def kill_worker_mid_task(dep: Deployment, fault: Fault, args: argparse.Namespace, **_: Any) -> Then:
    """Catch a worker inside a drain that has written and not committed: stop it (SIGSTOP)
    while its log shows the drain unfinished, look at its database connection, and kill it
    if it is in such a transaction; otherwise let it go on and look again."""
    task = DRAINS[fault.name]
    deadline = time.monotonic() + args.find_timeout
    tries = 0
    while True:
        for p in [p for p in dep.processes if p.role == "worker"]:
            if running_task(p, task) is None:
                continue
            os.kill(p.pid, signal.SIGSTOP)
            task_id = running_task(p, task)  # the log cannot move on while it is stopped
            doing = open_write_transaction(p.pid) if task_id else None
            if doing is None:
                os.kill(p.pid, signal.SIGCONT)
                tries += 1
                continue
            dep.kill(p)
            fault.at, fault.at_monotonic = time.time(), time.monotonic()
            fault.evidence.update(
                process=p.name, task=task, task_id=task_id, uncommitted=doing, looks=tries + 1,
                log=str(p.log),
            )  # fmt: skip
            return lambda p=p: restart_and_see_redelivery(dep, p, fault, args)
        if time.monotonic() > deadline:
            raise FaultError(
                f"no {task} was caught inside a transaction within {args.find_timeout:.0f} s "
                f"({tries} looks)"
            )
        time.sleep(0.005)


def restart_and_see_redelivery(
    dep: Deployment, p: Managed, fault: Fault, args: argparse.Namespace
) -> None:
    fault.evidence["restarted_as"] = restart(dep, p, args).name
    wait_until(
        lambda: redelivery(fault, dep.config.run_dir),
        args.visibility_timeout + args.recovery_timeout,
        f"{fault.name}: the killed worker's task was not delivered again and finished",
    )


def ready_entries(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = [k for k in client.scan_iter("sg:ready:*") if client.type(k) == b"zset"]
        return sum(int(client.zcard(k)) for k in keys)
    finally:
        client.close()


def watch_feeder(fault: Fault, url: str, args: argparse.Namespace) -> None:
    def refilled() -> bool:
        try:
            return ready_entries(url) > 0
        except Exception:
            return False

    wait_until(refilled, args.recovery_timeout, "the dispatch cache was not rebuilt")
    fault.evidence["feeder_rebuilt_s"] = round(time.monotonic() - fault.at_monotonic, 2)


def flush_redis(
    dep: Deployment, fault: Fault, args: argparse.Namespace, redis: PrivateRedis, **_: Any
) -> None:
    import redis as redis_py

    url = redis.url(REDIS_DB)
    fault.evidence["ready_entries_before"] = ready_entries(url)
    client = redis_py.Redis.from_url(url, socket_timeout=5)
    try:
        fault.evidence["keys_flushed"] = int(client.dbsize())
        client.flushall()
    finally:
        client.close()
    fault.at, fault.at_monotonic = time.time(), time.monotonic()
    watch_feeder(fault, url, args)


def restart_redis(
    dep: Deployment, fault: Fault, args: argparse.Namespace, redis: PrivateRedis, **_: Any
) -> None:
    url = redis.url(REDIS_DB)
    fault.evidence["ready_entries_before"] = ready_entries(url)
    redis.kill(dep)
    fault.at, fault.at_monotonic = time.time(), time.monotonic()
    time.sleep(args.outage)
    redis.start(dep)
    fault.evidence["down_s"] = round(time.monotonic() - fault.at_monotonic, 2)
    watch_feeder(fault, url, args)


def cut_postgres(dep: Deployment, fault: Fault, args: argparse.Namespace, **_: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        fault.evidence["connections_terminated"] = cursor.fetchone()[0]
    fault.at, fault.at_monotonic = time.time(), time.monotonic()
    # A web request right after: Django tests a kept connection before using it.
    statuses = []
    for port in dep.ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                statuses.append(r.status)
        except OSError as e:
            statuses.append(str(getattr(e, "code", e)))
    fault.evidence["healthz_after"] = statuses


ACTIONS: dict[str, Callable[..., Then | None]] = {
    "asgi": kill_asgi,
    "worker-validate": kill_worker_mid_task,
    "worker-assimilate": kill_worker_mid_task,
    "redis-flush": flush_redis,
    "redis-restart": restart_redis,
    "postgres": cut_postgres,
}


def fire(name: str, dep: Deployment, wl: workload.Workload, args, redis: PrivateRedis) -> Fault:
    fault = Fault(name)
    fault.results_before = counts(wl.batch_id)[0]
    fault.at, fault.at_monotonic = time.time(), time.monotonic()
    print(f"fault: {name} at {fault.results_before} results", file=sys.stderr, flush=True)
    then = ACTIONS[name](dep, fault, args, redis=redis)
    wait_recovered(fault, dep, wl.batch_id, args)
    if then is not None:
        then()
    return fault


# --- after the run: evidence from the logs and the tallies ----------------------------------


def _log_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def redelivery(fault: Fault, run_dir: Path) -> bool:
    """Where and when the killed worker's task was received again, and how it ended there
    (False: not yet received, or received and still running; its outcome is only known
    once the worker logs it)."""
    task_id = fault.evidence["task_id"]
    killed_log = Path(fault.evidence["log"])
    again = []
    for log in sorted(run_dir.glob("worker-*.log")):
        for line in task_lines(log):
            if line["id"] == task_id and line["what"] == "received" and log != killed_log:
                again.append((_log_time(line["at"]), log.stem, line))
    finished = [
        line["what"]
        for log in run_dir.glob("worker-*.log")
        if log != killed_log
        for line in task_lines(log)
        if line["id"] == task_id and line["what"] != "received"
    ]
    fault.evidence["redelivered"] = bool(again)
    if again:
        at, name, _ = min(again)
        fault.evidence["redelivered_to"] = name
        fault.evidence["redelivered_after_s"] = round(at - fault.at, 1)
        fault.evidence["redelivered_outcome"] = finished[0] if finished else "unfinished"
    return bool(again) and bool(finished)


def reconnections(fault: Fault, until: float, tallies: list[dict[str, Any]]) -> None:
    """The volunteers whose session ended between this fault and the next."""
    lost = [
        r
        for t in tallies
        for r in t.get("reconnects", [])
        if fault.at - 0.5 <= r["lost_at"] < until
    ]
    fault.evidence["volunteers_reconnected"] = len(lost)
    if fault.name != "asgi":
        return  # no other fault should cost a volunteer its socket
    gaps = [r["welcomed_at"] - fault.at for r in lost]
    port = fault.evidence.get("port")
    fault.evidence.update(
        moved_to_other_process=sum(
            1 for r in lost if r["from_url"] != r["to_url"] and f":{port}/" in r["from_url"]
        ),
        replicas_resumed=sum(r["resumed"] for r in lost),
        results_sent_again=sum(r["resent"] for r in lost),
        reconnect_p50_s=_round(metrics.percentile(gaps, 50)),
        reconnect_max_s=_round(max(gaps) if gaps else None),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def exactly_once(batch_id: int) -> dict[str, int]:
    """What check.audit does not look at: each work unit's output stored once and equal to
    the app's reference, and the batch's counters equal to what its work units say."""
    from compute.models import AssimilatedOutput, Batch, WorkUnit
    from compute.states import AssimilateState

    outputs = dict(
        AssimilatedOutput.objects.filter(batch_id=batch_id).values_list("workunit_id", "output")
    )
    inputs = dict(WorkUnit.objects.filter(batch_id=batch_id).values_list("id", "input"))
    batch = Batch.objects.get(id=batch_id)
    done = WorkUnit.objects.filter(batch_id=batch_id, assimilate_state=AssimilateState.DONE)
    return {
        "workunits_without_output": len(inputs.keys() - outputs.keys()),
        "outputs_not_of_the_batch": len(outputs.keys() - inputs.keys()),
        "wrong_outputs": sum(
            1 for wu, out in outputs.items() if wu in inputs and out != workload.double(inputs[wu])
        ),
        "batch_counter_mismatch": int(
            batch.n_assimilated != done.filter(error_mask=0).count()
            or batch.n_errored != done.exclude(error_mask=0).count()
        ),
    }


# --- the run --------------------------------------------------------------------------------


def execute(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    redis = PrivateRedis(args.redis_server)
    config = make_config(args, run_dir, redis.url(REDIS_DB))
    data = run_record(args, config, run_dir)
    faults: list[Fault] = []
    with Deployment(config) as dep:
        redis.start(dep)
        wl = prepared_workload(dep, args)
        dep.start()
        print(
            f"running {args.volunteers} volunteers on {args.workunits} work units; "
            f"faults: {', '.join(args.faults)}",
            file=sys.stderr,
            flush=True,
        )
        args.processes = min(args.processes, args.volunteers)
        volunteers = start_volunteers(dep, args, wl.project_slug)
        started = time.monotonic()
        total = args.workunits * args.quorum
        wait_until(
            lambda: counts(wl.batch_id)[0] >= FIRE_AFTER * total,
            args.timeout,
            "the first fifth of the results did not come in",
        )
        for name in args.faults:
            if counts(wl.batch_id)[1] >= args.workunits:
                raise FaultError(f"the batch finished before {name} fired; use more work units")
            faults.append(fire(name, dep, wl, args, redis))
        wait_for_batch(dep, wl, args, started)
        data["wall_s"] = time.monotonic() - started
        dep.stop(roles=["volunteers"], timeout=20)
        data["tallies"] = read_tallies(volunteers)
        data["redis_starts"] = redis.starts
    data["pids"] = dep.started
    ends = [f.at for f in faults[1:]] + [time.time()]
    for fault, until in zip(faults, ends, strict=True):
        reconnections(fault, until, data["tallies"])
    data["faults"] = faults
    data["audit"] = check.audit(wl.batch_id, report.all_acked(data["tallies"]))
    data["exactly_once"] = exactly_once(wl.batch_id)
    from django.db import connections

    connections.close_all()
    return data


# --- the report -----------------------------------------------------------------------------


def verdicts(data: dict[str, Any]) -> list[str]:
    """What failed: empty when every fault fired and was recovered from cleanly."""
    problems = []
    for f in data["faults"]:
        e = f.evidence
        if f.name == "asgi" and e.get("moved_to_other_process", 0) == 0:
            problems.append("asgi: no volunteer moved to the other process")
        if f.name.startswith("worker-"):
            if not e.get("redelivered"):
                problems.append(f"{f.name}: the killed worker's task was not delivered again")
            elif e.get("redelivered_outcome") != "succeeded":
                problems.append(
                    f"{f.name}: the task delivered again ended {e.get('redelivered_outcome')}"
                )
        if f.name == "postgres" and e.get("connections_terminated", 0) == 0:
            problems.append("postgres: no connection was terminated")
    audit, once = data["audit"], data["exactly_once"]
    if not audit.clean:
        problems.append(
            f"audit: {audit.lost} lost, {audit.double_credited} double-credited, "
            f"{audit.stuck} stuck"
        )
    problems += [f"{k}: {v}" for k, v in once.items() if v]
    return problems


def summarise(data: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    args = data["args"]
    tallies = data["tallies"]
    errors: dict[str, int] = {}
    for t in tallies:
        for code, n in t["errors"].items():
            errors[code] = errors.get(code, 0) + n
    return {
        "run_dir": data["run_dir"],
        "machine": data["machine"],
        "parameters": {
            k: getattr(args, k)
            for k in ("volunteers", "workunits", "quorum", "task_seconds", "prefetch", "faults")
        },
        "wall_s": round(data["wall_s"], 1),
        "acked": sum(len(t["acked"]) for t in tallies),
        "volunteer_errors": errors,
        "faults": [asdict(f) for f in data["faults"]],
        "audit": data["audit"].as_dict(),
        "exactly_once": data["exactly_once"],
        "problems": problems,
        "status": "ok" if not problems else "failed",
        "pids": data["pids"],
    }


def table(summary: dict[str, Any]) -> str:
    p, m = summary["parameters"], summary["machine"]
    rows = [
        ("run", "machine", f"{m['cores']} cores, {m['memory_mib'] // 1024} GiB, shared", m["cpu"]),
        ("run", "load", f"{p['volunteers']} volunteers, {p['workunits']} work units, "
         f"quorum {p['quorum']}, tasks {p['task_seconds']} s", ""),
        ("run", "wall time", f"{summary['wall_s']} s", f"{summary['acked']:,} results acked"),
    ]  # fmt: skip
    for f in summary["faults"]:
        detail = ", ".join(f"{k} {v}" for k, v in f["evidence"].items() if k not in ("log",))
        rows.append(
            (
                f["name"],
                "work flowing again",
                f"results {_s(f['results_recovered_s'])}, "
                f"assimilation {_s(f['assimilated_recovered_s'])}",
                detail,
            )
        )
    errors = ", ".join(f"{k} {v}" for k, v in sorted(summary["volunteer_errors"].items()))
    a, once = summary["audit"], summary["exactly_once"]
    rows += [
        ("volunteers", "error replies", errors or "none", "each answered and retried"),
        ("audit", "lost results", str(a["lost"]), ""),
        ("audit", "double credit", str(a["double_credited"]), ""),
        ("audit", "stuck work units", str(a["stuck"]), ""),
        ("audit", "outputs stored once", "yes" if not any(once.values()) else str(once), ""),
        ("", "status", summary["status"], "; ".join(summary["problems"])),
    ]
    return metrics.render_table(rows)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out = args.out.resolve()
    run_dir = make_run_dir(args.out)
    data = guarded_run(
        args, run_dir, execute, (DeploymentError, HarnessError, FaultError, RedisServerError)
    )
    if isinstance(data, int):
        return data
    problems = verdicts(data)
    summary = summarise(data, problems)
    save_results(run_dir, summary, table(summary))
    print(
        f"\nlogs, table.txt and results.json in {run_dir}; the database "
        f"{database_name(args.database_url)} is left for inspection"
    )
    if problems:
        print("\nFAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
