"""The bench harness end to end on a tiny workload: a real deployment on this machine, a
clean audit, every item of the table, and no process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import metrics, report

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

    table = (run_dir / "table.txt").read_text()
    assert table.strip() in done.stdout
    missing = [item for item in report.ITEMS if item not in table]
    assert not missing, f"items missing from the table: {missing}"
    roles = {p["role"] for p in summary["processes"]}
    assert {"asgi", "worker", "beat", "volunteers", "harness"} <= roles
    for p in summary["processes"]:
        assert f"{p['name']} (pid {p['pid']})" in table

    started = [p for p in summary["processes"] if p["role"] not in ("postgresql", "redis")]
    assert all(metrics.cpu_seconds(p["pid"]) is None for p in started), "a process outlived the run"
    assert {"asgi-1.log", "worker-1.log", "beat.log", "volunteers-2.json"} <= {
        p.name for p in run_dir.iterdir()
    }
