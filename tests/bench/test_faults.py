"""The fault drill end to end at a small scale (the reduced version CI runs): a real
deployment on this machine, every fault fired and recovered from, and the whole-database
check clean afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import faults
from bench.harness import metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMOKE_DATABASE = f"sg_bench_faults_smoke_{os.getpid()}"
SMOKE_REDIS_DB = 15  # unused: the drill runs a Redis server of its own
VOLUNTEERS, WORKUNITS = 16, 900


def test_every_fault_is_recovered_from_with_nothing_lost_or_credited_twice(services, tmp_path):
    database, _ = services
    command = [
        sys.executable, "-m", "bench.faults",
        "--volunteers", str(VOLUNTEERS), "--workunits", str(WORKUNITS),
        "--task-seconds", "0.4", "--visibility-timeout", "6",
        "--database-url", database, "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stderr[-6000:] + done.stdout[-4000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "results.json").read_text())
    assert summary["status"] == "ok", summary["problems"]
    fired = {f["name"]: f for f in summary["faults"]}
    assert list(fired) == list(faults.FAULTS)
    for f in fired.values():
        assert f["results_recovered_s"] is not None
        assert f["assimilated_recovered_s"] is not None

    # The killed ASGI process's volunteers went to the other one and took their tasks along.
    asgi = fired["asgi"]["evidence"]
    assert asgi["moved_to_other_process"] >= 1
    assert asgi["replicas_resumed"] >= 1
    assert asgi["reconnect_max_s"] is not None

    # Each worker was killed inside an uncommitted transaction of its drain, and the task,
    # never acknowledged, was delivered again and finished on another worker.
    for name in ("worker-validate", "worker-assimilate"):
        e = fired[name]["evidence"]
        assert e["uncommitted"], e
        assert e["redelivered"] is True
        assert e["redelivered_to"] != Path(e["log"]).stem
        assert e["redelivered_outcome"] == "succeeded"

    # Redis flushed, then killed and started again empty: the dispatch cache came back from
    # PostgreSQL, and no volunteer lost its socket to the restart.
    for name in ("redis-flush", "redis-restart"):
        e = fired[name]["evidence"]
        assert e["ready_entries_before"] > 0
        assert e["feeder_rebuilt_s"] is not None
    # Only the killed ASGI process cost volunteers their sockets.
    for name in faults.FAULTS[1:]:
        assert fired[name]["evidence"]["volunteers_reconnected"] == 0, name

    # Every database connection cut; web requests right after were served.
    pg = fired["postgres"]["evidence"]
    assert pg["connections_terminated"] >= 4  # 2 ASGI, 2 workers, beat-driven tasks
    assert pg["healthz_after"] == [200, 200]

    audit = summary["audit"]
    assert (audit["lost"], audit["double_credited"], audit["stuck"]) == (0, 0, 0)
    # An acknowledgement can die with the killed process after the result was committed:
    # the volunteer sends it again and is told the replica is over (stale, no penalty).
    assert WORKUNITS * 2 - VOLUNTEERS <= audit["acked"] <= WORKUNITS * 2
    assert set(summary["volunteer_errors"]) <= {"server_error", "not_in_progress"}
    assert set(summary["exactly_once"].values()) == {0}
    table = (run_dir / "table.txt").read_text()
    assert table.strip() in done.stdout
    # Every process it started (2 ASGI, 2 workers, beat, Redis, the volunteers, and each
    # one started again after a kill) is gone.
    assert len(summary["pids"]) >= 11
    assert all(metrics.cpu_seconds(pid) is None for pid in summary["pids"]), "a process outlived"
