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
    "lease latency p50", "lease latency p99", "empty assigns", "volunteer efficiency",
    "refused results", "disconnects",
    "lost results", "double-credited", "stuck work units", "status",
)  # fmt: skip
ROLES = ("asgi", "worker", "beat", "volunteers", "postgresql", "redis", "harness")


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
                    "wall_s")
    }  # fmt: skip
    return {
        **total,
        "lease_ms": [ms for t in tallies for ms in t["lease_ms"]],
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
            "pool": args.pool,
            "concurrency": args.concurrency if args.pool == "prefork" else 1,
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
            "efficiency": (
                v["busy_s"] / v["wall_s"] if args.task_seconds > 0 and v["wall_s"] > 0 else None
            ),
        },
        "window_s": data["window_s"],
        "processes": [asdict(u) for u in data["usage"]],
        "audit": data["audit"].as_dict(),
    }


# --- the table ------------------------------------------------------------------------------

Row = tuple[str, str, str, str]


def _parameter_rows(p: dict[str, Any]) -> list[Row]:
    pool = p["pool"] + (f" -c {p['concurrency']}" if p["pool"] == "prefork" else "")
    sweeps = ", ".join(f"{k} {v:g} s" for k, v in sorted(p["sweeps"].items()))
    settings = ", ".join(f"{k}={v}" for k, v in sorted(p["settings"].items())) or "none"
    s = "parameters"
    return [
        (s, "volunteers", f"{p['volunteers']:,}", "anonymous hosts, 1 core each"),
        (s, "work units", f"{p['workunits']:,}", "one batch; output {y: 2x}"),
        (s, "quorum", str(p["quorum"]), "min_quorum = target_nresults"),
        (s, "task seconds", f"{p['task_seconds']:g}", "sleep per task (0: return at once)"),
        (s, "volunteer processes", str(p["processes"]), f"clients start over {p['ramp']:g} s"),
        (s, "prefetch", str(p["prefetch"]), "tasks held per volunteer (PREFETCH_PER_CORE)"),
        (s, "ASGI processes", str(p["asgi"]), "uvicorn --ws websockets-sansio, round-robin"),
        (s, "Celery workers", str(p["workers"]), f"pool {pool}, one shared queue, + 1 beat"),
        (s, "sweeps", "", f"{sweeps}; the rest as in settings"),
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


def _volunteer_rows(v: dict[str, Any]) -> list[Row]:
    s = "volunteers"
    efficiency = "n/a" if v["efficiency"] is None else f"{100 * v['efficiency']:.1f} %"
    refused = sum(v["refused"].values())
    return [
        (s, "lease latency p50", fmt(v["lease_p50_ms"], 1, " ms"),
         f"request -> assign with >= 1 task; {v['lease_requests']:,} samples"),
        (s, "lease latency p99", fmt(v["lease_p99_ms"], 1, " ms"), ""),
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
        + _volunteer_rows(summary["volunteers"])
        + _process_rows(summary["processes"], summary["window_s"])
        + _audit_rows(summary["audit"], summary["status"], summary["why"])
    )
    title = f"socialgrid bench, {summary['started_at']}, {summary['run_dir']}"
    return title + "\n\n" + render_table(rows)
