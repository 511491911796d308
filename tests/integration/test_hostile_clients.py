"""Cheating volunteers against real processes: the Procfile's web process serving the ASGI
application, PostgreSQL, Redis, and a real Celery worker (with its beat) doing every
validation. The volunteers are WebSocket clients speaking the protocol; one in five returns a
wrong output of its own (cheaters never agree with each other)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db import connection

import pytest
from websockets.asyncio.client import ClientConnection, connect

from compute import submission
from compute.models import Host, WorkUnit
from compute.ratelimit import TokenBucket
from compute.states import AssimilateState
from socialgrid import procfile
from tests.compute.hostile_support import check_cheaters_caught, wrong_output
from tests.compute.protocol_client import CAPS, check_server_message
from tests.support import square

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.no_error_logs,
]

ROOT = Path(__file__).resolve().parents[2]
HOSTS = 10
WORKUNITS = 30
TIMEOUT = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def asgi_port(worker_env: dict[str, str], tmp_path: Path) -> Iterator[int]:
    """The Procfile's web process on the test database and Redis."""
    port = _free_port()
    log = tmp_path / "asgi.log"
    with log.open("wb") as stream:
        proc = subprocess.Popen(
            procfile.argv("web"),
            cwd=ROOT,
            env=procfile.environment(
                {**worker_env, "PYTHONUNBUFFERED": "1"}, HOST="127.0.0.1", PORT=port
            ),
            stdout=stream,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 45
        while not _healthy(port):
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        print(log.read_text(errors="replace")[-3000:])


class Volunteer:
    """One host on its own socket: asks for work, returns it at once (the reference output,
    or a wrong one when it cheats), keeps under the server's message rate."""

    def __init__(self, port: int, project: str, cheater: int | None) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/worker/"
        self.origin = f"http://127.0.0.1:{port}"
        self.project = project
        self.cheater = cheater
        self.host: str | None = None
        self.acked = 0
        self.refused: list[dict[str, Any]] = []
        self.bucket = TokenBucket(10.0, 10.0)

    async def pace(self) -> None:
        """Wait for a token: the server answers messages past its rate with errors."""
        for _ in range(1000):
            if self.bucket.take():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the message rate never allowed another message")

    async def ask(self, ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
        await self.pace()
        await ws.send(json.dumps(message))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
            check_server_message(reply)
            if reply["type"] not in ("credit", "cancel", "notice"):
                return reply

    async def run(self, stop: asyncio.Event) -> None:
        async with connect(
            self.url, origin=self.origin, proxy=None, open_timeout=20, close_timeout=2
        ) as ws:
            hello = {"type": "hello", "v": 1, "project": self.project, "capabilities": CAPS}
            welcome = await self.ask(ws, hello)
            assert welcome["type"] == "welcome", welcome
            self.host = welcome["host"]
            rate = welcome["limits"]["messages_per_second"]
            self.bucket = TokenBucket(0.5 * rate, 0.5 * rate)
            while not stop.is_set():
                assign = await self.ask(ws, {"type": "request", "n": 2})
                assert assign["type"] == "assign", assign
                if not assign["tasks"]:
                    await asyncio.sleep(min(assign["retry_after"] or 0.3, 0.3))
                    continue
                for task in assign["tasks"]:
                    output = (
                        square(task["input"])
                        if self.cheater is None
                        else wrong_output(task["input"], self.cheater)
                    )
                    reply = await self.ask(
                        ws,
                        {
                            "type": "result",
                            "replica": task["replica"],
                            "lease": task["lease"],
                            "output": output,
                            "cpu_time": 0.5,
                        },
                    )
                    if reply["type"] == "ack":
                        self.acked += 1
                    else:
                        self.refused.append(reply)


def _unfinished(batch_id: int) -> int:
    try:
        return (
            WorkUnit.objects.filter(batch_id=batch_id)
            .exclude(assimilate_state=AssimilateState.DONE)
            .count()
        )
    finally:
        connection.close()


async def _drive(volunteers: list[Volunteer], batch_id: int) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(v.run(stop)) for v in volunteers]
    started = time.monotonic()
    try:
        while await asyncio.to_thread(_unfinished, batch_id):
            for t in tasks:
                if t.done():
                    t.result()  # a volunteer failed: say why
            assert time.monotonic() - started < TIMEOUT, "the batch did not finish in time"
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.result()


def test_cheaters_are_caught_by_a_real_worker_over_real_sockets(
    celery_worker, asgi_port, project_factory
):
    project = project_factory(min_quorum=2, target_nresults=2, delay_bound=600)
    app = project.apps.get()
    batch = submission.create_batch(
        project, app, [{"x": i} for i in range(WORKUNITS)], name="hostile"
    )
    volunteers = [
        Volunteer(asgi_port, project.slug, i // 5 if i % 5 == 0 else None) for i in range(HOSTS)
    ]
    asyncio.run(_drive(volunteers, batch.id))

    hosts = {str(u): i for u, i in Host.objects.values_list("uuid", "id")}
    cheaters = [hosts[v.host] for v in volunteers if v.cheater is not None]
    honest = [hosts[v.host] for v in volunteers if v.cheater is None]
    assert len(cheaters) == HOSTS // 5
    # Every result was sent for a replica the host held: none was refused.
    assert all(not v.refused for v in volunteers), [v.refused for v in volunteers]
    assert all(v.acked > 0 for v in volunteers)

    figures = check_cheaters_caught(
        batch.id, app.id, honest, cheaters, square, project.daily_quota_per_core
    )
    assert figures.workunits == WORKUNITS
    assert figures.wrong_canonical == 0
    assert figures.cheater_credit == 0
    assert figures.honest_credit > 0
    assert figures.extra_replica_workunits > 0
