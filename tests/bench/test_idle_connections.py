"""The idle-connections bench end to end at a small scale: a real deployment on this
machine, every connection welcomed and heartbeating, the memory figures of the ASGI
process, every item of the table, and no process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import idle_connections
from bench.harness import metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Not the bench's defaults (sg_bench_idle, Redis db 8) nor the run's smoke test (db 4).
SMOKE_DATABASE = f"sg_bench_idle_smoke_{os.getpid()}"
SMOKE_REDIS_DB = 5
CONNECTIONS = 200


def test_every_idle_connection_is_welcomed_and_measured_and_nothing_is_left(services, tmp_path):
    database, redis = services
    command = [
        sys.executable, "-m", "bench.idle_connections",
        "--connections", str(CONNECTIONS), "--processes", "2", "--rate", "200",
        "--steady", "4", "--warmup", "5", "--workers", "0",
        # Heartbeats and the server's pings every second, so that the short window sees
        # them answered.
        "--setting", "PROTOCOL_HEARTBEAT_SECONDS=1", "--setting", "PROTOCOL_PING_SECONDS=1",
        "--database-url", database, "--redis-url", redis, "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "results.json").read_text())
    assert summary["status"] == "ok"

    c = summary["connections"]
    assert (c["requested"], c["attempted"], c["welcomed"]) == (CONNECTIONS,) * 3
    assert (c["failed"], c["never_welcomed"], c["dropped"]) == (0, 0, 0)
    assert c["connect_s"] > 0
    assert 0 < c["welcome_p50_ms"] <= c["welcome_p99_ms"]
    # Every connection heartbeats about once a second through a 4 s window.
    assert c["heartbeats_answered_window"] >= CONNECTIONS
    assert c["heartbeats_answered"] >= c["heartbeats_answered_window"]
    # And answers the server's WebSocket ping about once a second too.
    assert c["pings_answered_window"] >= CONNECTIONS
    assert c["pings_answered"] >= c["pings_answered_window"]
    assert c["unexpected"] == {}
    assert summary["parameters"]["heartbeat_s"] == 1

    a = summary["asgi"]
    assert a["rss_before_kib"] > 0
    assert a["rss_after_kib"] > 0
    assert a["peak_rss_kib"] >= a["rss_after_kib"]
    assert a["rss_window_min_kib"] > 0
    # 200 open sockets, consumers and sessions cost the process some memory.
    assert a["kib_per_connection"] > 0
    assert a["kib_per_connection"] == pytest.approx(
        (a["rss_after_kib"] - a["rss_before_kib"]) / c["welcomed"]
    )
    assert a["idle_cpu_percent"] is not None
    assert a["idle_cpu_percent"] >= 0
    # What keeping a connection alive costs the process: its CPU in the window per ping or
    # heartbeat answered in it, and per connection and second.
    assert a["keepalive_target_ms"] == 0.1
    kept = c["heartbeats_answered_window"] + c["pings_answered_window"]
    assert a["cpu_per_keepalive_ms"] == pytest.approx(1000 * a["idle_cpu_s"] / kept)
    assert a["cpu_per_keepalive_ms"] > 0
    assert a["server_cpu_per_keepalive_ms"] >= a["cpu_per_keepalive_ms"]
    assert a["cpu_us_per_connection_s"] == pytest.approx(
        1e6 * a["idle_cpu_s"] / c["welcomed"] / summary["window_s"]
    )
    assert a["open_files_limit"] >= CONNECTIONS

    # The floor: a bare endpoint under the same web command took the same connections and
    # answered their heartbeats and pings, and the process's figure is put against its own.
    f = summary["floor"]
    assert f["why"] == ""
    assert f["welcomed"] == CONNECTIONS
    assert f["heartbeats_answered"] >= CONNECTIONS
    assert f["pings_answered"] >= CONNECTIONS
    assert f["cpu_per_keepalive_ms"] == pytest.approx(
        1000 * f["cpu_s"] / (f["heartbeats_answered"] + f["pings_answered"])
    )
    assert f["cpu_per_keepalive_ms"] > 0
    assert f["ratio"] == pytest.approx(a["cpu_per_keepalive_ms"] / f["cpu_per_keepalive_ms"])

    table = (run_dir / "table.txt").read_text()
    assert table.strip() in done.stdout
    missing = [item for item in idle_connections.ITEMS if item not in table]
    assert not missing, f"items missing from the table: {missing}"
    roles = {p["role"] for p in summary["processes"]}
    assert {"asgi", "beat", "clients", "harness"} <= roles
    for p in summary["processes"]:
        assert f"{p['name']} (pid {p['pid']})" in table

    # The ASGI process, beat and both client processes, all stopped.
    assert len(summary["pids"]) == 4
    assert all(metrics.cpu_seconds(pid) is None for pid in summary["pids"]), "a process outlived"
    assert not json.loads((tmp_path / ".running.json").read_text())
    assert {
        "asgi-1.log",
        "beat.log",
        "clients-1.json",
        "clients-2.json",
        "floor-web.log",
        "floor-clients-1.json",
    } <= {p.name for p in run_dir.iterdir()}
