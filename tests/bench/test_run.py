"""The bench harness end to end on a tiny workload: a real deployment on this machine, a
clean audit, every item of the table, and no process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.harness import metrics, report
from socialgrid import procfile

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Not the bench's defaults (sg_bench_run, Redis db 3): a smoke test never disturbs a run.
SMOKE_DATABASE = f"sg_bench_smoke_{os.getpid()}"
SMOKE_REDIS_DB = 4


def test_a_tiny_run_has_a_clean_audit_and_every_item_of_the_table(services, tmp_path):
    database, redis = services
    command = [
        sys.executable, "-m", "bench.harness.run",
        "--volunteers", "6", "--workunits", "40", "--quorum", "2", "--processes", "2",
        "--asgi", "1", "--workers", "1", "--ramp", "0.2", "--timeout", "40",
        "--ceiling-seconds", "1", "--ceiling-rows", "512",
        "--database-url", database, "--redis-url", redis, "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150)

    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "results.json").read_text())
    audit = summary["audit"]
    assert (audit["lost"], audit["double_credited"], audit["stuck"]) == (0, 0, 0)
    assert summary["throughput"]["results"] == 80
    assert summary["throughput"]["acked"] == 80
    assert summary["throughput"]["results_per_second"] > 0
    assert summary["volunteers"]["lease_requests"] > 0
    steady = summary["volunteers"]["steady_lease_requests"]
    assert 0 < steady <= summary["volunteers"]["lease_requests"]
    assert summary["volunteers"]["steady_lease_p99_ms"] > 0
    # The deployment's own settings: no sweep or setting of the bench's.
    assert (summary["parameters"]["sweeps"], summary["parameters"]["settings"]) == ({}, {})
    assert summary["parameters"]["procfile"] == procfile.read()

    # Server CPU per result: the server's processes over the window, by role.
    cpu = summary["server_cpu"]
    assert cpu["results"] == 80
    assert cpu["ms_per_result"] > 0
    assert cpu["target_ms"] == 2.0
    by_role = cpu["by_role_ms_per_result"]
    assert set(by_role) == {"asgi", "worker", "beat", "postgresql", "redis"}
    assert by_role["asgi"] > 0
    assert by_role["worker"] > 0
    assert cpu["ms_per_result"] == pytest.approx(sum(by_role.values()))

    # The ceiling, measured in the same run before the workload.
    ws = summary["ceiling"]["websocket"]
    assert ws["connected"] == ws["connections"] == 6
    assert ws["answered"] > 0
    assert ws["messages_per_second"] > 0
    # The Procfile's web options: its --ws, uvicorn's protocol with the keep-alive wheel.
    assert ws["ws"] == "socialgrid.keepalive:KeepaliveProtocol (KeepaliveProtocol)"
    assert ws["client_errors"] == 0
    db = summary["ceiling"]["database"]
    assert db["rows"] == 512
    assert db["accepted"] == db["created"] == 512 + db["batch"]
    assert db["rows_per_second"] > 0
    assert db["client_cpu_per_row_us"] > 0
    share = summary["ceiling"]["share_of_websocket"]
    assert share == pytest.approx(
        summary["throughput"]["results_per_second"] / ws["messages_per_second"]
    )
    assert summary["ceiling"]["share_of_database"] > 0
    # The database ceiling ran on a copy of the run's database, dropped afterwards.
    assert not _database_exists(database, db["database"])

    table = (run_dir / "table.txt").read_text()
    assert table.strip() in done.stdout
    missing = [item for item in report.ITEMS if item not in table]
    assert not missing, f"items missing from the table: {missing}"
    roles = {p["role"] for p in summary["processes"]}
    assert {"asgi", "worker", "beat", "volunteers", "harness"} <= roles
    for p in summary["processes"]:
        assert f"{p['name']} (pid {p['pid']})" in table
    detail = {p["role"]: p["detail"] for p in summary["processes"]}
    assert detail["asgi"].startswith("Procfile web, PORT=")
    assert detail["worker"] == "Procfile worker, WORKER=1"
    assert detail["beat"] == "Procfile beat"

    started = [
        p
        for p in summary["processes"]
        if p["role"] not in ("postgresql", "redis") and p["name"] != "harness-db"
    ]
    assert all(metrics.cpu_seconds(p["pid"]) is None for p in started), "a process outlived the run"
    assert {"asgi-1.log", "worker-1.log", "beat.log", "volunteers-2.json"} <= {
        p.name for p in run_dir.iterdir()
    }


def _database_exists(url: str, name: str) -> bool:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )
