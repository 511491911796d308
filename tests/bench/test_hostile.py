"""The hostile-volunteers bench end to end at a small scale: a real deployment on this
machine, cheaters caught (no wrong canonical output, no credit, quota shrunk), a clean audit,
every item of the table, and no process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import hostile
from bench.harness import metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Not the bench's defaults (sg_bench_hostile, Redis db 9) nor the other smoke tests' (4, 5).
SMOKE_DATABASE = f"sg_bench_hostile_smoke_{os.getpid()}"
SMOKE_REDIS_DB = 14
VOLUNTEERS = 10
WORKUNITS = 40


def test_a_tiny_hostile_run_catches_every_cheater_and_leaves_nothing(services, tmp_path):
    database, redis = services
    command = [
        sys.executable, "-m", "bench.hostile",
        "--volunteers", str(VOLUNTEERS), "--workunits", str(WORKUNITS), "--cheaters", "0.2",
        "--quorum", "2", "--task-seconds", "0.02", "--ramp", "0.2", "--timeout", "90",
        "--database-url", database, "--redis-url", redis, "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "results.json").read_text())
    assert summary["status"] == "ok"

    c = summary["cheating"]
    assert (c["hosts"], c["cheaters"], c["honest"]) == (VOLUNTEERS, VOLUNTEERS // 5, 8)
    assert c["workunits"] == WORKUNITS
    assert (c["wrong_canonical"], c["without_canonical"]) == (0, 0)
    assert (c["cheater_credit"], c["cheater_ledger_rows"]) == (0, 0)
    assert c["cheaters_with_results"] >= 1
    assert c["cheaters_with_invalid"] == c["cheaters_with_results"]
    assert len(c["cheater_quota_after"]) == c["cheaters_with_results"]
    assert all(q < c["cheater_quota_before"] for q in c["cheater_quota_after"])
    assert c["invalid_by_cheaters"] == c["invalid_results"] > 0
    assert c["workunits_extra_because_of_cheaters"] > 0
    assert c["honest_credit"] > 0
    assert summary["database"]["results"] >= 2 * WORKUNITS
    assert summary["database"]["results_per_second"] > 0
    a = summary["audit"]
    assert (a["lost"], a["double_credited"], a["stuck"]) == (0, 0, 0)

    table = (run_dir / "table.txt").read_text()
    assert table.strip() in done.stdout
    missing = [item for item in hostile.ITEMS if item not in table]
    assert not missing, f"items missing from the table: {missing}"

    # The ASGI process, the worker, beat and the volunteer process, all stopped.
    assert len(summary["pids"]) == 4
    assert all(metrics.cpu_seconds(pid) is None for pid in summary["pids"]), "a process outlived"
    assert not json.loads((tmp_path / ".running.json").read_text())
