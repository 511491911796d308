"""Stopping a web process: the Procfile's web command, as docs/deploy.md gives it, exits soon
after SIGINT (Ctrl-C) whatever ran before, and loses nothing that was acknowledged.

Each case starts the real command on a free port against the test database and Redis,
drives volunteers over real sockets, and stops it. The database calls a stop could wait on
are made to hang for as long as the test likes: the test holds a lock on the table they
need, in a connection of its own, until the process has exited. The bound on the exit is a
hang detector (the graceful part of a stop lasts at most 5 s), not a measurement.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import connection

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed

from compute import submission
from compute.models import Replica
from compute.states import ServerState
from tests.compute.protocol_client import CAPS
from tests.integration.conftest import _test_database_url
from tests.integration.test_scale_out import STARTUP_TIMEOUT, AsgiProcess, Volunteer

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The graceful part of a stop is 5 s (--timeout-graceful-shutdown); a process still running
# three times that long after Ctrl-C is hung.
HUNG_AFTER = 15.0


@pytest.fixture
def web(worker_env: dict[str, str], tmp_path: Path) -> Iterator[AsgiProcess]:
    process = AsgiProcess("web", worker_env, tmp_path)
    process.launch()
    try:
        process.wait_ready(time.monotonic() + STARTUP_TIMEOUT)
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)


@pytest.fixture
def lock() -> Iterator[Callable[[str], psycopg.Connection]]:
    """``lock(table)``: holds an exclusive lock on ``table`` from a connection of the test's
    own, until that connection is closed (at the latest when the test ends)."""
    held: list[psycopg.Connection] = []

    def take(table: str) -> psycopg.Connection:
        conn = psycopg.connect(_test_database_url().replace("postgres://", "postgresql://", 1))
        held.append(conn)
        conn.execute(f"LOCK TABLE {connection.ops.quote_name(table)} IN ACCESS EXCLUSIVE MODE")
        return conn

    yield take
    for conn in held:
        conn.close()


def stop(web: AsgiProcess) -> int:
    """Ctrl-C, then the exit code; fails if the process is still running after HUNG_AFTER."""
    web.proc.send_signal(signal.SIGINT)
    try:
        return web.proc.wait(timeout=HUNG_AFTER)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the web process still runs {HUNG_AFTER:.0f} s after SIGINT:\n{web.tail()}")


def work(project_factory, n: int):
    project = project_factory()
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(n)], name="stop")
    return project


def report(v: Volunteer, task: dict) -> None:
    x = task["input"]["x"]
    v.send(
        {
            "type": "result",
            "replica": task["replica"],
            "lease": task["lease"],
            "output": {"y": x * x},
            "cpu_time": 0.1,
        }
    )


def test_a_stop_after_volunteers_computed_and_left_is_prompt_and_keeps_every_acknowledged_result(
    web, project_factory
):
    project = work(project_factory, 6)
    volunteers = [Volunteer(web) for _ in range(3)]
    acknowledged = set()
    for v in volunteers:
        v.hello(project=project.slug)
        for task in v.lease(2):
            report(v, task)
            acknowledged.add(v.expect("ack", where=lambda m: m["of"] == "result")["replica"])
    for v in volunteers:
        v.close()

    assert stop(web) == 0
    stored = Replica.objects.filter(id__in=acknowledged, server_state=ServerState.OVER)
    assert stored.count() == len(acknowledged) == 6


def test_a_stop_is_prompt_while_results_wait_on_the_database_and_stores_none_of_them(
    web, project_factory, lock
):
    project = work(project_factory, 4)
    volunteers = [Volunteer(web) for _ in range(2)]
    held = []
    for v in volunteers:
        v.hello(project=project.slug)
        held.append((v, v.lease(2)))
    locked = lock("compute_replica")  # the writer's flush of these results waits behind it
    for v, tasks in held:
        for task in tasks:
            report(v, task)
    for v, _ in held:
        v.close()

    assert stop(web) == 0
    locked.close()
    # Never acknowledged, never stored: their volunteers send them again elsewhere.
    ids = [task["replica"] for _, tasks in held for task in tasks]
    replicas = Replica.objects.filter(id__in=ids)
    assert {r.server_state for r in replicas} == {ServerState.IN_PROGRESS}
    assert all(r.output is None for r in replicas)


def test_a_stop_is_prompt_with_volunteers_still_connected_and_one_waiting_for_its_hello(
    web, project_factory, lock
):
    project = work(project_factory, 2)
    connected = Volunteer(web)
    connected.hello(project=project.slug)
    connected.lease(2)
    lock("compute_host")  # a new volunteer's hello waits behind it
    waiting = Volunteer(web)
    waiting.send({"type": "hello", "v": 1, "capabilities": CAPS, "project": project.slug})

    assert stop(web) == 0
    for v in (connected, waiting):
        with pytest.raises(ConnectionClosed):
            v.ws.recv(timeout=5)
