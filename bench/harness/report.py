"""From a run's raw figures to its summary (results.json) and its one table (table.txt)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from bench.harness.metrics import fmt, percentile, render_table

# Every item of the table but the per-process rows (one per process, named after it).
ITEMS = (
    "volunteers", "work units", "quorum", "task seconds", "volunteer processes", "prefetch",
    "ASGI processes", "Celery workers", "sweeps", "settings", "timeout",
    "cpu model", "cores", "arch", "versions", "load average before", "load average after",
    "CPUs busy in the window",
    "results/s end to end", "results/s acked", "assimilation lag p50", "assimilation lag p99",
    "task backlog",
    "server CPU per result", "ASGI per result", "Celery workers per result", "beat per result",
    "PostgreSQL per result", "Redis per result",
    "WebSocket messages/s", "PostgreSQL rows/s", "results/s as a share of the ceiling",
    "lease latency p50", "lease latency p99", "lease latency p99 after the ramp",
    "empty assigns", "volunteer efficiency",
    "refused results", "disconnects",
    "lost results", "double-credited", "stuck work units", "status",
)  # fmt: skip
ROLES = ("asgi", "worker", "beat", "volunteers", "postgresql", "redis", "harness")
# The server: what a deployment runs, and what the server CPU per result adds up.
SERVER_ROLES = {
    "asgi": "ASGI",
    "worker": "Celery workers",
    "beat": "beat",
    "postgresql": "PostgreSQL",
    "redis": "Redis",
}
TARGET_CPU_MS = 2.0  # the project's target: <= 2 ms of server CPU per replica result


def all_acked(tallies: list[dict[str, Any]]) -> list[int]:
    return [replica for t in tallies for replica in t["acked"]]


def _merge(tallies: list[dict[str, Any]]) -> dict[str, Any]:
    firsts = [t["first_assign"] for t in tallies if t["first_assign"] is not None]
    lasts = [t["last_ack"] for t in tallies if t["last_ack"] is not None]
    refused: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for t in tallies:
        refused.update(t["refused"])
        errors.update(t["errors"])
    total = {
        key: sum(t[key] for t in tallies)
        for key in ("volunteers", "welcomed", "empty_assigns", "tasks_assigned", "results_sent",
                    "credit_messages", "cancelled", "disconnects", "lost_requests", "busy_s",
                    "wall_s", "requests", "requests_on_results")
    }  # fmt: skip
    return {
        **total,
        "lease_ms": [ms for t in tallies for ms in t["lease_ms"]],
        "lease_at": [at for t in tallies for at in t.get("lease_at", [])],
        "last_welcome": max(
            (t["last_welcome"] for t in tallies if t.get("last_welcome")), default=None
        ),
        "acked": sum(len(t["acked"]) for t in tallies),
        "first_assign": min(firsts) if firsts else None,
        "last_ack": max(lasts) if lasts else None,
        "refused": dict(refused),
        "errors": dict(errors),
        "notes": [n for t in tallies for n in t["notes"]][:20],
    }


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    args, config, db = data["args"], data["config"], data["database"]
    v = _merge(data["tallies"])
    acked_span = v["last_ack"] - v["first_assign"] if v["last_ack"] and v["first_assign"] else None
    lease = v.pop("lease_ms")
    # Once every volunteer was welcomed: the load the run was asked for, without the hellos
    # of the ramp.
    steady = [ms for ms, at in zip(lease, v.pop("lease_at"), strict=False)
              if v["last_welcome"] is not None and at >= v["last_welcome"]]  # fmt: skip
    return {
        "status": data["status"],
        "why": data["why"],
        "run_dir": data["run_dir"],
        "started_at": data["started_at"],
        "parameters": {
            "volunteers": args.volunteers,
            "workunits": args.workunits,
            "quorum": args.quorum,
            "task_seconds": args.task_seconds,
            "processes": args.processes,
            "prefetch": args.prefetch,
            "asgi": args.asgi,
            "workers": args.workers,
            "procfile": config_procfile(),
            "sweeps": config.sweeps,
            "settings": config.settings,
            "timeout": args.timeout,
            "ramp": args.ramp,
            "database_url": config.database_url,
            "redis_url": config.redis_url,
            "queue": config.queue,
        },
        "machine": {
            **data["machine"],
            "load_before": data["load_before"],
            "load_after": data["load_after"],
            "busy_in_window": data["machine_busy"],
            "bench_share_in_window": sum(u.cpu_percent for u in data["usage"])
            / (100.0 * (data["machine"]["cores"] or 1)),
        },
        "throughput": {
            **db,
            "acked": v["acked"],
            "acked_seconds": acked_span,
            "results_per_second_acked": v["acked"] / acked_span if acked_span else None,
            "backlog": data["backlog"],
        },
        "volunteers": {
            **v,
            "lease_requests": len(lease),
            "lease_p50_ms": percentile(lease, 50),
            "lease_p99_ms": percentile(lease, 99),
            "steady_lease_requests": len(steady),
            "steady_lease_p99_ms": percentile(steady, 99) if steady else None,
            "efficiency": (
                v["busy_s"] / v["wall_s"] if args.task_seconds > 0 and v["wall_s"] > 0 else None
            ),
        },
        "window_s": data["window_s"],
        "processes": [asdict(u) for u in data["usage"]],
        "server_cpu": server_cpu(data["usage"], db["results"]),
        "ceiling": ceiling_summary(data.get("ceiling") or {}, db["results_per_second"]),
        "audit": data["audit"].as_dict(),
    }


def config_procfile() -> dict[str, str]:
    from socialgrid import procfile

    return procfile.read()


def server_cpu(usage: list[Any], results: int) -> dict[str, Any]:
    """CPU seconds of the server's processes over the measuring window, per replica result:
    in all and by role."""
    seconds = dict.fromkeys(SERVER_ROLES, 0.0)
    present = set()
    for u in usage:
        if u.role in seconds:
            seconds[u.role] += u.cpu_s
            present.add(u.role)
    total = sum(seconds.values())

    def per_result(cpu_s: float) -> float | None:
        return 1000.0 * cpu_s / results if results else None

    ms = per_result(total)
    return {
        "results": results,
        "cpu_s": total,
        "ms_per_result": ms,
        "target_ms": TARGET_CPU_MS,
        "within_target": ms is not None and ms <= TARGET_CPU_MS,
        "by_role_cpu_s": seconds,
        "by_role_ms_per_result": {role: per_result(s) for role, s in seconds.items()},
        # A service not on this machine (or not readable) is missing from the sum.
        "missing_roles": [role for role in SERVER_ROLES if role not in present],
    }


def ceiling_summary(c: dict[str, Any], results_per_second: float | None) -> dict[str, Any]:
    ws, db = c.get("websocket"), c.get("database")

    def share(ceiling: float | None) -> float | None:
        return results_per_second / ceiling if results_per_second and ceiling else None

    return {
        "websocket": ws,
        "database": db,
        "share_of_websocket": share(ws and ws["messages_per_second"]),
        "share_of_database": share(db and db["rows_per_second"]),
    }


# --- the table ------------------------------------------------------------------------------

Row = tuple[str, str, str, str]


def _parameter_rows(p: dict[str, Any]) -> list[Row]:
    sweeps = ", ".join(f"{k} {v:g} s" for k, v in sorted(p["sweeps"].items()))
    sweeps = f"deviating from the deployment's: {sweeps}" if sweeps else "as a deployment has them"
    settings = ", ".join(f"{k}={v}" for k, v in sorted(p["settings"].items()))
    settings = f"deviating from the deployment's: {settings}" if settings else "none beyond these"
    s = "parameters"
    return [
        (s, "volunteers", f"{p['volunteers']:,}", "anonymous hosts, 1 core each"),
        (s, "work units", f"{p['workunits']:,}", "one batch; output {y: 2x}"),
        (s, "quorum", str(p["quorum"]), "min_quorum = target_nresults"),
        (s, "task seconds", f"{p['task_seconds']:g}", "sleep per task (0: return at once)"),
        (s, "volunteer processes", str(p["processes"]), f"clients start over {p['ramp']:g} s"),
        (s, "prefetch", str(p["prefetch"]), "tasks held per volunteer (PREFETCH_PER_CORE)"),
        (s, "ASGI processes", str(p["asgi"]), "Procfile web, one port each, round-robin"),
        (s, "Celery workers", str(p["workers"]), "Procfile worker, one shared queue, + 1 beat"),
        (s, "sweeps", "", sweeps),
        (s, "settings", "", settings),
        (s, "timeout", f"{p['timeout']:g} s", ""),
    ]


def _machine_rows(m: dict[str, Any]) -> list[Row]:
    def load(values: list[float]) -> str:
        return "1/5/15 min: " + " ".join(f"{x:.2f}" for x in values)

    s = "machine"
    bench = m["bench_share_in_window"]
    versions = (
        f"Python {m['python']}, PostgreSQL {m.get('postgresql', '?')}, Redis {m.get('redis', '?')}"
    )
    return [
        (s, "cpu model", "", m["cpu"]),
        (s, "cores", str(m["cores"]), f"{m['memory_mib']:,} MiB memory; shared with other work"),
        (s, "arch", m["arch"], f"Linux {m['kernel']}"),
        (s, "versions", "", versions),
        (s, "load average before", f"{m['load_before'][0]:.2f}", load(m["load_before"])),
        (s, "load average after", f"{m['load_after'][0]:.2f}", load(m["load_after"])),
        (
            s,
            "CPUs busy in the window",
            f"{100 * m['busy_in_window']:.0f} %",
            f"of all cores (/proc/stat); this bench's processes {100 * bench:.0f} %, other work "
            f"{100 * max(0.0, m['busy_in_window'] - bench):.0f} %",
        ),
    ]


def _throughput_rows(t: dict[str, Any]) -> list[Row]:
    s = "throughput"
    return [
        (s, "results/s end to end", fmt(t["results_per_second"]),
         f"{t['results']:,} accepted results / {fmt(t['seconds'], 2)} s, first lease -> last "
         "work unit validated, assimilated, credited (DB timestamps)"),
        (s, "results/s acked", fmt(t["results_per_second_acked"]),
         f"{t['acked']:,} acks / {fmt(t['acked_seconds'], 2)} s, first assign -> last ack "
         "(volunteers' clocks)"),
        (s, "assimilation lag p50", fmt(t["assimilation_lag_p50_s"], 2, " s"),
         "a work unit's last result received -> assimilated"),
        (s, "assimilation lag p99", fmt(t["assimilation_lag_p99_s"], 2, " s"), ""),
        (s, "task backlog", f"{sum(t['backlog'].values()):,}",
         "Celery messages still queued at the end: " + _backlog(t["backlog"])),
    ]  # fmt: skip


def _backlog(backlog: dict[str, int]) -> str:
    if not backlog:
        return "none"
    top = [f"{name.rsplit('.', 1)[-1]} {n:,}" for name, n in list(backlog.items())[:3]]
    return ", ".join(top) + (", ..." if len(backlog) > 3 else "")


def _ms(value: float | None) -> str:
    return fmt(value, 2, " ms")


def _server_cpu_rows(c: dict[str, Any]) -> list[Row]:
    s = "server CPU"
    verdict = "n/a" if c["ms_per_result"] is None else ("within" if c["within_target"] else "ABOVE")
    missing = f"; not measured: {', '.join(c['missing_roles'])}" if c["missing_roles"] else ""
    rows = [
        (s, "server CPU per result", _ms(c["ms_per_result"]),
         f"{verdict} the target of {c['target_ms']:g} ms; {fmt(c['cpu_s'], 2)} CPU s of ASGI, "
         f"workers, beat, PostgreSQL and Redis in the window / {c['results']:,} results{missing}"),
    ]  # fmt: skip
    for role, label in SERVER_ROLES.items():
        rows.append(
            (s, f"{label} per result", _ms(c["by_role_ms_per_result"][role]),
             f"{fmt(c['by_role_cpu_s'][role], 2)} CPU s")
        )  # fmt: skip
    return rows


def _ceiling_rows(c: dict[str, Any], results_per_second: float | None) -> list[Row]:
    s = "ceiling"
    ws, db = c["websocket"], c["database"]
    if ws:
        errors = (
            f"; client errors {ws['client_errors']}: {ws['client_error']}"
            if ws["client_errors"]
            else ""
        )
        ws_row = (
            s, "WebSocket messages/s", fmt(ws["messages_per_second"], 0),
            f"bare ASGI app, one process, Procfile web options (--ws {ws['ws']}); "
            f"{ws['connected']}/{ws['connections']} connections, {ws['send_bytes']} B -> "
            f"{ws['reply_bytes']} B, {fmt(ws['window_s'], 1, ' s')}; server "
            f"{fmt(ws['server_cpu_percent'], 0, ' %')} CPU, "
            f"{fmt(ws['server_cpu_per_message_us'], 1, ' us')}/message = "
            f"{fmt(ws['messages_per_cpu_second'], 0)}/s per core{errors}",
        )  # fmt: skip
    else:
        ws_row = (s, "WebSocket messages/s", "n/a", "not measured (--ceiling-seconds 0)")
    if db:
        pg = db["postgresql_cpu_per_row_us"]
        db_row = (
            s, "PostgreSQL rows/s", fmt(db["rows_per_second"], 0),
            f"results recorded by compute.dispatch.flush.apply, {db['batch']} per flush, "
            f"{db['rows']:,} rows in {fmt(db['seconds'], 2, ' s')} (a copy of the bench "
            f"database); client CPU {fmt(db['client_cpu_per_row_us'], 1, ' us')}/row, "
            f"PostgreSQL {fmt(pg, 1, ' us')}/row; {db['accepted']:,}/{db['created']:,} accepted",
        )  # fmt: skip
    else:
        db_row = (s, "PostgreSQL rows/s", "n/a", "not measured (--ceiling-rows 0)")

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    share = (
        s, "results/s as a share of the ceiling", pct(c["share_of_websocket"]),
        f"{fmt(results_per_second)} results/s end to end / WebSocket messages/s; "
        f"/ PostgreSQL rows/s: {pct(c['share_of_database'])} (a result needs about one "
        "message round trip and one row)",
    )  # fmt: skip
    return [ws_row, db_row, share]


def _volunteer_rows(v: dict[str, Any]) -> list[Row]:
    s = "volunteers"
    efficiency = "n/a" if v["efficiency"] is None else f"{100 * v['efficiency']:.1f} %"
    refused = sum(v["refused"].values())
    return [
        (s, "lease latency p50", fmt(v["lease_p50_ms"], 1, " ms"),
         f"request (alone, or riding on a result) -> first answer with >= 1 task; "
         f"{v['lease_requests']:,} samples; {v['requests_on_results']:,} requests rode on "
         f"results, {v['requests']:,} went alone"),
        (s, "lease latency p99", fmt(v["lease_p99_ms"], 1, " ms"), ""),
        (s, "lease latency p99 after the ramp", fmt(v["steady_lease_p99_ms"], 1, " ms"),
         f"the {v['steady_lease_requests']:,} answers once every volunteer was welcomed "
         "(no hellos left)"),
        (s, "empty assigns", f"{v['empty_assigns']:,}", "'no work' answers (retry after <= 1 s)"),
        (s, "volunteer efficiency", efficiency,
         "sum compute / sum wall (first assign -> last result); n/a when tasks take 0 s"),
        (s, "refused results", f"{refused:,}",
         f"{v['results_sent']:,} results sent; protocol errors {v['errors'] or 'none'}"),
        (s, "disconnects", f"{v['disconnects']:,}",
         f"{v['welcomed']:,}/{v['volunteers']:,} welcomed; {v['lost_requests']} requests "
         "unanswered for 30 s"),
    ]  # fmt: skip


def _process_rows(processes: list[dict[str, Any]], window: float) -> list[Row]:
    rows = []
    for p in processes:
        rss = fmt(p["peak_rss_mib"], 1, " MiB")
        many = f", {p['processes']} processes" if p["processes"] > 1 else ""
        detail = (
            f"waited for a CPU {p['wait_percent']:.1f} %; peak RSS {rss} ({p['rss_kind']}{many})"
        )
        if p["detail"]:
            detail += f"; {p['detail']}"
        rows.append(
            ("processes", f"{p['name']} (pid {p['pid']})", f"{p['cpu_percent']:.1f} % CPU", detail)
        )
    rows.append(
        ("processes", "measuring window", f"{window:.1f} s", "CPU and wait: 100 % = one core")
    )
    return rows


def _audit_rows(a: dict[str, Any], status: str, why: str) -> list[Row]:
    s = "audit"
    stuck = ", ".join(f"{k} {n}" for k, n in a["stuck_detail"].items() if k != "total")
    return [
        (s, "lost results", str(a["lost"]),
         f"acked but not SUCCESS {a['acked_not_success']}; not assimilated "
         f"{a['not_assimilated']}; failed {a['failed_workunits']} (of {a['acked']:,} acked)"),
        (s, "double-credited", str(a["double_credited"]),
         f"replicas credited twice {a['replicas_credited_twice']}; credit for not-VALID "
         f"{a['credit_for_not_valid']}; hosts total != ledger {a['hosts_credit_mismatch']}"),
        (s, "stuck work units", str(a["stuck"]), stuck),
        (s, "status", "ok" if status == "ok" and a["clean"] else "FAILED", why),
    ]  # fmt: skip


def table(summary: dict[str, Any]) -> str:
    rows = (
        _parameter_rows(summary["parameters"])
        + _machine_rows(summary["machine"])
        + _throughput_rows(summary["throughput"])
        + _server_cpu_rows(summary["server_cpu"])
        + _ceiling_rows(summary["ceiling"], summary["throughput"]["results_per_second"])
        + _volunteer_rows(summary["volunteers"])
        + _process_rows(summary["processes"], summary["window_s"])
        + _audit_rows(summary["audit"], summary["status"], summary["why"])
    )
    title = f"socialgrid bench, {summary['started_at']}, {summary['run_dir']}"
    return title + "\n\n" + render_table(rows)
