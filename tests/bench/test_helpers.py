"""The harness's pure helpers, without any service."""

from __future__ import annotations

import os

import pytest

from bench.harness import metrics
from bench.harness.services import TargetRefused, check_targets


def test_percentiles_interpolate_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert metrics.percentile(values, 50) == pytest.approx(50.5)
    assert metrics.percentile(values, 99) == pytest.approx(99.01)
    assert metrics.percentile([], 50) is None


def test_it_refuses_to_drop_a_database_not_named_bench():
    with pytest.raises(TargetRefused, match="must contain 'bench'"):
        check_targets("postgres://postgres@127.0.0.1/socialgrid", "redis://127.0.0.1/3")


@pytest.mark.parametrize("db", [0, 1, 2])
def test_it_refuses_to_flush_the_protected_redis_databases(db):
    with pytest.raises(TargetRefused, match="protected"):
        check_targets("postgres://postgres@127.0.0.1/sg_bench_run", f"redis://127.0.0.1/{db}")


def test_it_reads_its_own_cpu_time_and_memory():
    assert metrics.cpu_seconds(os.getpid()) > 0
    assert metrics.peak_rss_kib(os.getpid()) > 0
    assert metrics.cpu_seconds(2**22 + 1) is None


def test_the_table_aligns_values_and_names_each_section_once():
    text = metrics.render_table(
        [("a", "one", "1.0", "x"), ("a", "two", "22.50", ""), ("b", "three", "n/a", "y")]
    )
    lines = text.splitlines()
    assert lines[2].startswith("a ")
    assert lines[3].startswith("  ")
    assert lines[2].index("1.0") + 3 == lines[3].index("22.50") + 5
    assert "" in lines
    assert lines[-1].startswith("b ")


def test_a_task_delivered_again_counts_once_it_has_finished_on_the_other_worker(tmp_path):
    from bench import faults

    task = "compute.tasks.drain_validation"
    killed, other = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    task_id = "6f382752-882f-4c6c-8d5d-659a62d54e4d"

    def line(at: str, what: str) -> str:
        return f"[2026-12-03 09:59:{at},000: INFO/MainProcess] Task {task}[{task_id}] {what}\n"

    killed.write_text(line("10", "received"))
    fault = faults.Fault("worker-validate", at=faults._log_time("2026-12-03 09:59:10,000"))
    fault.evidence.update(task_id=task_id, log=str(killed))
    assert not faults.redelivery(fault, tmp_path)
    assert fault.evidence["redelivered"] is False

    # Received again but still running: not yet, and its outcome not yet known.
    other.write_text(line("20", "received"))
    assert not faults.redelivery(fault, tmp_path)
    assert fault.evidence["redelivered_outcome"] == "unfinished"

    other.write_text(line("20", "received") + line("21", "succeeded in 0.2s: None"))
    assert faults.redelivery(fault, tmp_path)
    assert fault.evidence["redelivered_to"] == "worker-2"
    assert fault.evidence["redelivered_after_s"] == 10.0
    assert fault.evidence["redelivered_outcome"] == "succeeded"


def test_the_bare_endpoint_answers_every_text_frame_with_one_of_the_ack_size():
    import asyncio

    from bench.harness import ceiling

    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "x" * ceiling.SEND_BYTES},
        {"type": "websocket.receive", "bytes": b"ignored"},
        {"type": "websocket.receive", "text": "again"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(ceiling.application({"type": "websocket"}, receive, send))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.send"]
    assert {len(m["text"].encode()) for m in sent[1:]} == {ceiling.REPLY_BYTES}


def test_the_ceiling_can_run_the_web_command_under_another_websocket_implementation():
    from bench.harness import ceiling
    from socialgrid import procfile

    argv = procfile.web_argv_for(ceiling.APP)
    changed = ceiling.with_ws(argv, "websockets-sansio")
    assert changed[:2] == ["sh", "-c"]
    # The shell still expands the port and host; only --ws differs.
    assert '--port "${PORT:-8000}"' in changed[-1]
    assert ceiling.ws_implementation(changed[-1]) == "websockets-sansio (WebSocketsSansIOProtocol)"
    assert ceiling.ws_implementation(argv[-1]) == (
        "socialgrid.keepalive:KeepaliveProtocol (KeepaliveProtocol)"
    )
    words = ceiling.with_ws(changed, "auto")[-1].split()
    options = [i for i, w in enumerate(words) if w == "--ws" or w.startswith("--ws=")]
    assert len(options) == 1
    assert words[options[0] + 1] == "auto"


def test_server_cpu_per_result_adds_up_the_server_processes_only():
    from bench.harness import report
    from bench.harness.metrics import Usage

    def usage(role: str, cpu_s: float) -> Usage:
        return Usage(role, role, 1, 0.0, 0.0, None, "VmHWM", 1, "", cpu_s)

    rows = [usage("asgi", 1.0), usage("asgi", 0.5), usage("worker", 0.3), usage("beat", 0.0),
            usage("postgresql", 0.4), usage("volunteers", 9.0), usage("harness", 2.0)]  # fmt: skip
    c = report.server_cpu(rows, results=1000)
    assert c["ms_per_result"] == pytest.approx(2.2)
    assert c["by_role_ms_per_result"]["asgi"] == pytest.approx(1.5)
    assert c["by_role_ms_per_result"]["redis"] == 0.0
    assert c["missing_roles"] == ["redis"]
    assert c["within_target"] is False
    assert report.server_cpu(rows[:1], results=1000)["within_target"] is True
    assert report.server_cpu(rows, results=0)["ms_per_result"] is None


def test_the_share_of_the_ceiling_divides_the_results_rate_by_each_figure():
    from bench.harness import report

    ceiling = {
        "websocket": {"messages_per_second": 20_000.0},
        "database": {"rows_per_second": 10_000.0},
    }
    share = report.ceiling_summary(ceiling, 200.0)
    assert share["share_of_websocket"] == pytest.approx(0.01)
    assert share["share_of_database"] == pytest.approx(0.02)
    empty = report.ceiling_summary({"websocket": None, "database": None}, 200.0)
    assert (empty["share_of_websocket"], empty["share_of_database"]) == (None, None)
