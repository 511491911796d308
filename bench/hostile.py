"""Cheating volunteers at scale: a real deployment, a share of the hosts returning wrong
results, and what the engine made of them.

    .venv/bin/python -m bench.hostile [--volunteers 50] [--cheaters 0.2] [--workunits 500]
        [--quorum 2] [--processes 1] [--asgi 1] [--workers 1]

The deployment is the harness's (bench/harness/deployment.py): a fresh PostgreSQL database
and Redis database, ``--asgi`` web processes, ``--workers`` Celery workers and beat, each
started with the Procfile's command, with the sweeps and settings a deployment has; the
workload is the harness's too (one project with quorum ``--quorum`` and one batch of
``--workunits`` inputs, reference ``{"y": 2x}``). The volunteers are the harness's simulated
volunteers (this module run as ``python -m bench.hostile volunteers ...``), of which a
``--cheaters`` share return ``{"y": 2x + 1 + k}`` instead, k being the volunteer's own number:
wrong, and never the same as another cheater's (non-colluding). When every work unit is
assimilated, the database is audited and the table printed: wrong canonical outputs and the
cheaters' credit must be 0, every cheater's daily quota must have shrunk. Logs, table.txt and
results.json go to bench/out/hostile-<timestamp>/; the exit code is 0 only when the batch
finished, the harness's audit is clean and those figures hold.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import check, metrics, report, workload
from bench.harness.deployment import PYTHON, Deployment, DeploymentError, Managed
from bench.harness.metrics import fmt, render_table
from bench.harness.run import (
    HarnessError,
    add_deployment_options,
    guarded_run,
    make_config,
    make_run_dir,
    prepared_workload,
    read_tallies,
    run_record,
    save_results,
    wait_for_batch,
)
from bench.harness.volunteers import (
    SimVolunteer,
    Tally,
    raise_fd_limit,
    rotated,
    write_json,
)

ITEMS = (
    "volunteers", "cheaters", "work units", "quorum", "task seconds", "processes",
    "cpu model", "cores", "load average before", "load average after",
    "wrong canonical outputs", "cheater credit", "cheater ledger rows", "cheater quota before",
    "cheater quota after", "cheaters caught", "invalid results",
    "work units with extra replicas", "extra replicas", "honest credit",
    "results", "results/s", "refused results", "lost", "double-credited", "stuck", "status",
)  # fmt: skip


# === The volunteer processes ===================================================================


def wrong_double(data: Any, k: int) -> dict[str, Any]:
    """Cheater ``k``'s answer: wrong, and different from every other cheater's."""
    return {"y": data["x"] * 2 + 1 + k}


class CheatingVolunteer(SimVolunteer):
    """A simulated volunteer that returns its own wrong output for every task."""

    def __init__(self, *args: Any, index: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.index = index

    def answer(self, data: Any) -> dict[str, Any]:
        return wrong_double(data, self.index)


def is_cheater(index: int, share: float) -> bool:
    """Volunteer ``index`` cheats when the count of cheaters among the first volunteers steps
    up at it, so any run of volunteers holds its share (for 0.2: 4, 9, 14 ...)."""
    return int((index + 1) * share + 1e-9) > int(index * share + 1e-9)


async def run_volunteers(args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally(volunteers=args.count)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    volunteers: list[SimVolunteer] = []
    for k in range(args.count):
        index = args.first + k
        common = (rotated(args.url, index), args.project, args.task_seconds, args.prefetch)
        if is_cheater(index, args.cheaters):
            volunteers.append(CheatingVolunteer(*common, tally, index=index))
        else:
            volunteers.append(SimVolunteer(*common, tally))
    tasks = [
        asyncio.create_task(v.run(delay=args.ramp * k / max(1, args.count)))
        for k, v in enumerate(volunteers)
    ]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=5.0)
    return {
        **tally.as_dict(),
        "cheater_hosts": [v.host for v in volunteers if isinstance(v, CheatingVolunteer)],
        "honest_hosts": [v.host for v in volunteers if not isinstance(v, CheatingVolunteer)],
    }


def volunteers_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hostile volunteers")
    p.add_argument("--url", action="append", required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--cheaters", type=float, required=True)
    p.add_argument("--task-seconds", type=float, default=0.0)
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--ramp", type=float, default=1.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    raise_fd_limit()
    data = asyncio.run(run_volunteers(args))
    write_json(args.out, data)
    print(
        f"{data['welcomed']}/{args.count} welcomed, {len(data['cheater_hosts'])} cheating, "
        f"{data['results_sent']} results sent, {len(data['acked'])} acked",
        file=sys.stderr,
    )
    return 0


# === The bench ==================================================================================


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n")[0])
    p.add_argument("--volunteers", type=int, default=50)
    p.add_argument("--cheaters", type=float, default=0.2, help="share of volunteers cheating")
    p.add_argument("--workunits", type=int, default=500)
    p.add_argument("--quorum", type=int, default=2, help="min_quorum = target_nresults")
    p.add_argument(
        "--task-seconds",
        type=float,
        default=0.05,
        help="each task's duration and CPU time (claimed credit is 0 with 0)",
    )
    p.add_argument("--processes", type=int, default=1, help="volunteer client processes")
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--asgi", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--ramp", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=600.0)
    add_deployment_options(
        p,
        database_url="postgres://postgres@127.0.0.1:5432/sg_bench_hostile",
        redis_url="redis://127.0.0.1:6379/9",
        setting_example="PROTOCOL_MESSAGES_PER_SECOND=40",
    )
    args = p.parse_args(argv)
    problems = []
    if not 0 < args.cheaters < 0.5:
        problems.append("--cheaters must be in (0, 0.5): honest hosts must be the majority")
    if args.quorum < 2:
        problems.append("--quorum must be at least 2: one result alone cannot be checked")
    if args.volunteers < 2 * args.quorum + 1 or args.workunits < 1:
        problems.append("--volunteers must be at least 2 x --quorum + 1, --workunits at least 1")
    if not 1 <= args.processes <= args.volunteers:
        problems.append("--processes must be between 1 and --volunteers")
    if problems:
        p.error("; ".join(problems))
    return args


def start_volunteers(dep: Deployment, args: argparse.Namespace, slug: str) -> list[Managed]:
    urls = [f"ws://127.0.0.1:{port}/ws/worker/" for port in dep.ports]
    procs = []
    for i in range(args.processes):
        first = i * args.volunteers // args.processes
        count = (i + 1) * args.volunteers // args.processes - first
        argv = [PYTHON, "-m", "bench.hostile", "volunteers", "--project", slug,
                "--first", str(first), "--count", str(count),
                "--cheaters", str(args.cheaters), "--task-seconds", str(args.task_seconds),
                "--prefetch", str(args.prefetch), "--ramp", str(args.ramp),
                "--out", str(dep.config.run_dir / f"volunteers-{i + 1}.json")]  # fmt: skip
        for url in urls:
            argv += ["--url", url]
        procs.append(dep.spawn(f"volunteers-{i + 1}", "volunteers", argv))
    return procs


def measure_cheating(
    wl: workload.Workload, quorum: int, cheater_uuids: list[str], honest_uuids: list[str]
) -> dict[str, Any]:
    """What the database says about the cheaters and the batch."""
    from django.db.models import Count, Sum

    from compute.models import CreditEntry, Host, HostApp, Project, Replica, WorkUnit
    from compute.states import Outcome, ValidateState

    by_uuid = {str(u): i for u, i in Host.objects.values_list("uuid", "id")}
    cheaters = [by_uuid[u] for u in cheater_uuids if u in by_uuid]
    honest = [by_uuid[u] for u in honest_uuids if u in by_uuid]
    workunits = WorkUnit.objects.filter(batch_id=wl.batch_id).select_related("canonical_replica")
    wrong = sum(
        1
        for wu in workunits
        if wu.canonical_replica is not None
        and wu.canonical_replica.output != workload.double(wu.input)
    )
    no_canonical = workunits.filter(canonical_replica__isnull=True).count()
    replicas = Replica.objects.filter(workunit__batch_id=wl.batch_id)
    invalid = replicas.filter(validate_state=ValidateState.INVALID)
    caught = invalid.filter(host_id__in=cheaters).values("host_id").distinct().count()
    returned = set(
        replicas.filter(host_id__in=cheaters, outcome=Outcome.SUCCESS).values_list(
            "host_id", flat=True
        )
    )
    quota = dict(
        HostApp.objects.filter(host_id__in=cheaters, app_id=wl.app_id).values_list(
            "host_id", "daily_quota"
        )
    )
    extra_wus = workunits.annotate(n=Count("replicas")).filter(n__gt=quorum).order_by().count()
    because = (
        WorkUnit.objects.filter(
            batch_id=wl.batch_id, replicas__in=invalid.filter(host_id__in=cheaters)
        )
        .distinct()
        .count()
    )
    cheater_credit = Host.objects.filter(id__in=cheaters).aggregate(s=Sum("total_credit"))["s"]
    honest_credit = Host.objects.filter(id__in=honest).aggregate(s=Sum("total_credit"))["s"]
    return {
        "hosts": Host.objects.count(),
        "cheaters": len(cheaters),
        "honest": len(honest),
        "workunits": workunits.count(),
        "wrong_canonical": wrong,
        "without_canonical": no_canonical,
        "cheater_credit": cheater_credit or 0.0,
        "cheater_ledger_rows": CreditEntry.objects.filter(host_id__in=cheaters).count(),
        "cheater_quota_before": Project.objects.get(id=wl.project_id).daily_quota_per_core,
        "cheater_quota_after": sorted(quota[h] for h in returned),
        "cheaters_with_results": len(returned),
        "cheaters_with_invalid": caught,
        "invalid_results": invalid.count(),
        "invalid_by_cheaters": invalid.filter(host_id__in=cheaters).count(),
        "workunits_with_extra_replicas": extra_wus,
        "workunits_extra_because_of_cheaters": because,
        "extra_replicas": replicas.count() - workunits.count() * quorum,
        "honest_credit": honest_credit or 0.0,
    }


def execute(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    args.sweep = []  # the sweeps as a deployment has them
    config = make_config(args, run_dir)
    config.queue = f"sg-bench-hostile-{run_dir.name}"
    data = run_record(args, config, run_dir)
    with Deployment(config) as dep:
        wl = prepared_workload(dep, args)
        dep.start()
        print(
            f"running {args.volunteers} volunteers ({args.cheaters:.0%} cheating) on "
            f"{args.workunits} work units (quorum {args.quorum}) ...",
            file=sys.stderr,
            flush=True,
        )
        volunteers = start_volunteers(dep, args, wl.project_slug)
        data["pids"] = [p.pid for p in dep.processes]
        started = time.monotonic()
        data["status"], data["why"] = wait_for_batch(dep, volunteers, wl, args.timeout)
        data["wall_s"] = time.monotonic() - started
        dep.stop(roles=["volunteers"], timeout=20.0)
        data["tallies"] = read_tallies(volunteers)
    data["load_after"] = metrics.load_average()
    data["database"] = workload.measure(wl.batch_id)
    data["audit"] = check.audit(wl.batch_id, report.all_acked(data["tallies"]))
    cheaters = [h for t in data["tallies"] for h in t["cheater_hosts"] if h]
    honest = [h for t in data["tallies"] for h in t["honest_hosts"] if h]
    data["cheating"] = measure_cheating(wl, args.quorum, cheaters, honest)
    from django.db import connections

    connections.close_all()
    return data


def verdict(data: dict[str, Any]) -> tuple[str, str]:
    c, audit = data["cheating"], data["audit"]
    problems = []
    if data["status"] != "ok":
        problems.append(data["why"])
    if not audit.clean:
        problems.append(
            f"audit: lost {audit.lost}, double-credited {audit.double_credited}, "
            f"stuck {audit.stuck}"
        )
    if c["wrong_canonical"]:
        problems.append(f"{c['wrong_canonical']} wrong canonical outputs")
    if c["cheater_credit"] or c["cheater_ledger_rows"]:
        problems.append(f"cheaters earned {c['cheater_credit']} credit")
    if any(q >= c["cheater_quota_before"] for q in c["cheater_quota_after"]):
        problems.append("a cheater's daily quota did not shrink")
    if c["cheaters_with_invalid"] != c["cheaters_with_results"]:
        problems.append(
            f"only {c['cheaters_with_invalid']} of the {c['cheaters_with_results']} cheaters "
            "that returned results were caught"
        )
    if not c["cheaters_with_results"]:
        problems.append("no cheater returned a result")
    return ("ok", "") if not problems else ("FAILED", "; ".join(problems))


def table(data: dict[str, Any], status: str, why: str) -> str:
    a, c, db, m = data["args"], data["cheating"], data["database"], data["machine"]
    audit = data["audit"]
    tallies = data["tallies"]
    refused = sum(sum(t["refused"].values()) for t in tallies)
    quotas = c["cheater_quota_after"]
    after = f"{min(quotas):,} .. {max(quotas):,}" if quotas else "n/a"
    P, R, A, F = "parameters", "machine", "cheating", "throughput"
    rows = [
        (P, "volunteers", str(a.volunteers), f"{c['hosts']} hosts in the database"),
        (P, "cheaters", str(c["cheaters"]),
         f"{a.cheaters:.0%} of the volunteers; each its own wrong output (non-colluding)"),
        (P, "work units", str(c["workunits"]), "reference {'y': 2x}"),
        (P, "quorum", str(a.quorum), "min_quorum = target_nresults"),
        (P, "task seconds", f"{a.task_seconds:g}", f"prefetch {a.prefetch}"),
        (P, "processes", f"{a.asgi} ASGI, {a.workers} worker",
         f"{a.processes} volunteer process(es), beat"),
        (R, "cpu model", "", str(m.get("cpu"))),
        (R, "cores", str(m.get("cores")), "shared with whatever else runs"),
        (R, "load average before", f"{data['load_before'][0]:.2f}", ""),
        (R, "load average after", f"{data['load_after'][0]:.2f}", ""),
        (A, "wrong canonical outputs", str(c["wrong_canonical"]),
         f"must be 0; work units without a canonical result {c['without_canonical']}"),
        (A, "cheater credit", fmt(c["cheater_credit"], 6), "must be 0 (sum of total_credit)"),
        (A, "cheater ledger rows", str(c["cheater_ledger_rows"]), "must be 0"),
        (A, "cheater quota before", f"{c['cheater_quota_before']:,}",
         "daily quota per core a new host starts with"),
        (A, "cheater quota after", after,
         "lowest .. highest of the cheaters that returned results"
         + (f"; median {statistics.median(quotas):,.0f}" if quotas else "")),
        (A, "cheaters caught", f"{c['cheaters_with_invalid']}/{c['cheaters_with_results']}",
         "cheaters with a result found invalid / cheaters that returned results "
         f"({c['cheaters']} in all)"),
        (A, "invalid results", str(c["invalid_results"]),
         f"{c['invalid_by_cheaters']} of them by cheaters"),
        (A, "work units with extra replicas", str(c["workunits_extra_because_of_cheaters"]),
         f"holding a cheater's invalid result; {c['workunits_with_extra_replicas']} with more "
         f"than {a.quorum} replicas in all"),
        (A, "extra replicas", str(c["extra_replicas"]),
         f"replicas beyond {a.quorum} per work unit"),
        (A, "honest credit", fmt(c["honest_credit"], 6), "sum of the honest hosts' total_credit"),
        (F, "results", str(db["results"]), "SUCCESS replicas of the batch"),
        (F, "results/s", fmt(db["results_per_second"], 1),
         f"first lease -> last assimilation, {fmt(db['seconds'], 1, ' s')}"),
        (F, "refused results", str(refused), "results answered with an error"),
        ("audit", "lost", str(audit.lost), "the harness's audit (bench/README.md)"),
        ("audit", "double-credited", str(audit.double_credited), ""),
        ("audit", "stuck", str(audit.stuck), ""),
        ("result", "status", status, why),
    ]  # fmt: skip
    title = f"socialgrid hostile volunteers, {data['started_at']}, {data['run_dir']}"
    return title + "\n\n" + render_table(rows)


def summarise(data: dict[str, Any], status: str, why: str) -> dict[str, Any]:
    return {
        "run_dir": data["run_dir"],
        "started_at": data["started_at"],
        "parameters": vars(data["args"]),
        "machine": data["machine"],
        "load_before": data["load_before"],
        "load_after": data["load_after"],
        "cheating": data["cheating"],
        "database": data["database"],
        "audit": data["audit"].as_dict(),
        "wall_s": data.get("wall_s"),
        "pids": data.get("pids", []),
        "status": status,
        "why": why,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["volunteers"]:
        return volunteers_main(argv[1:])
    args = parse_args(argv)
    args.out = args.out.resolve()
    run_dir = make_run_dir(args.out)
    run_dir = run_dir.rename(run_dir.with_name(f"hostile-{run_dir.name}"))
    data = guarded_run(args, run_dir, execute, (DeploymentError, HarnessError))
    if isinstance(data, int):
        return data
    status, why = verdict(data)
    save_results(run_dir, summarise(data, status, why), table(data, status, why))
    print(f"\nlogs, table.txt and results.json in {run_dir}")
    if status != "ok":
        print(f"\nFAILED: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
