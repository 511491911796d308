"""``manage.py volunteer`` against ``make demo``: migrate, seed_demo and runplatform in a
temporary var directory, with volunteers as separate processes, as an operator runs them.

The demo's key search (40 units of ~0.8 s in Python, quorum 2) is called off and a small one
submitted in its place, so that the whole batch runs in seconds."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.core.management import CommandError, call_command

import pytest

from compute.examples.keysearch import hash_key, split_job

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "headless:"
KEY = 1_234_567  # in the 7th of 8 units of 200,000 keys (~0.08 s each in Python)
CANCEL_DEMO_SEARCH = """
from compute.models import Batch
from compute.submission import cancel_batch
for batch in Batch.objects.filter(project__slug="keysearch"):
    cancel_batch(batch)
"""


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result


@dataclass
class Platform:
    env: dict[str, str]
    url: str
    var: Path
    batch_id: int
    log: Path

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return manage(self.env, *args)

    def volunteer(self, name: str, *args: str) -> Volunteer:
        out, err = self.var / f"{name}.out", self.var / f"{name}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "volunteer", "--url", self.url, *args],
                env=self.env,
                cwd=ROOT,
                stdout=stdout,
                stderr=stderr,
            )
        return Volunteer(name, process, out, err)

    def server_log(self) -> str:
        return self.log.read_text()[-4000:]


@dataclass
class Volunteer:
    name: str
    process: subprocess.Popen
    out: Path
    err: Path

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"volunteer {self.name} still running after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return f"stdout: {self.out.read_text()}\nstderr: {self.err.read_text()[-4000:]}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"runplatform exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"runplatform did not answer within 30 s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    var = tmp_path_factory.mktemp("platform")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        SOCIALGRID_VAR_DIR=str(var),
        PYTHONPATH=str(ROOT),
        SWEEP_FEEDER_SECONDS="0.5",
        # Volunteers with nothing to do ask again after a second, so idle is soon noticed.
        PROTOCOL_RETRY_AFTER_SECONDS="1",
        # The search submitted here is the work: the demo's own series would never run out.
        DEMO_WORK="0",
    )
    manage(env, "migrate", "-v0")
    manage(env, "seed_demo", "--password", "x")
    manage(env, "shell", "-c", CANCEL_DEMO_SEARCH)
    inputs = split_job(PREFIX, hash_key(PREFIX, KEY), 1_600_000, 200_000)
    jsonl = var / "search.jsonl"
    jsonl.write_text("".join(json.dumps(i) + "\n" for i in inputs))
    submitted = manage(env, "submit_batch", "keysearch", "keysearch", str(jsonl))
    batch_id = int(re.search(r"batch (\d+):", submitted.stdout).group(1))
    port = free_port()
    log = var / "runplatform.log"
    with log.open("w") as stream:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runplatform", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(port, server, log)
        yield Platform(env, f"ws://127.0.0.1:{port}/ws/worker/", var, batch_id, log)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_two_volunteer_processes_finish_a_key_search_batch(platform):
    volunteers = [
        platform.volunteer(
            name,
            "--project=keysearch",
            "--workers=2",
            "--until-idle=3",
            f"--state={platform.var / name}.json",
        )
        for name in ("alice", "bob")
    ]
    try:
        codes = [v.wait(timeout=60) for v in volunteers]
    finally:
        for v in volunteers:
            v.kill()
    for v, code in zip(volunteers, codes, strict=True):
        assert code == 0, v.output()
        assert "volunteer stopped (no work for 3 s)" in v.out.read_text(), v.output()

    exported = platform.manage("export_results", str(platform.batch_id))
    assert "still in progress" not in exported.stderr, platform.server_log()
    outputs = [json.loads(line)["output"] for line in exported.stdout.splitlines()]
    assert [o["found"] for o in outputs if o["found"] is not None] == [KEY]
    status = json.loads(platform.manage("compute_status", "--json", "--project=keysearch").stdout)
    (project,) = status["projects"]
    # Nothing left anywhere: every work unit was validated and assimilated, or cancelled.
    queues = ("unsent", "in_progress", "need_validate", "assimilate_ready")
    assert {q: project[q] for q in queues} == dict.fromkeys(queues, 0)
    assert project["validated"] >= len(outputs)
    assert project["assimilated"] >= len(outputs)


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...; comm may hold spaces, so split after its ")".
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.add(int(stat.parent.name))
    return found


def test_ctrl_c_stops_a_volunteer_and_its_workers_with_a_summary(platform):
    v = platform.volunteer("carol", "--project=mandelbrot", "--workers=2", "--benchmark=1e8")
    try:
        deadline = time.monotonic() + 30
        # Computing: connected, and the worker processes started (with a resource tracker).
        while "connected to" not in v.err.read_text() or len(children(v.process.pid)) < 2:
            assert v.process.poll() is None, v.output()
            assert time.monotonic() < deadline, f"no work started within 30 s:\n{v.output()}"
            time.sleep(0.1)
        workers = children(v.process.pid)
        v.process.send_signal(signal.SIGINT)
        code = v.wait(timeout=15)
    finally:
        v.kill()
    assert code == 0, v.output()
    assert "volunteer stopped (interrupted)" in v.out.read_text()
    assert "Traceback" not in v.err.read_text(), v.output()
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_an_unknown_project_is_a_clear_error(platform):
    v = platform.volunteer("dave", "--project=no-such-project", "--workers=1", "--benchmark=1e8")
    try:
        code = v.wait(timeout=30)
    finally:
        v.kill()
    assert code == 1
    assert "unknown or inactive project (close 4004)" in v.err.read_text(), v.output()


@pytest.mark.parametrize(
    ("reference", "error"),
    [
        ("square", "is not APP=dotted.path"),
        ("square=tests.support.nothing_here", "has no attribute 'nothing_here'"),
        ("square=no_such_module.run", "cannot import 'no_such_module'"),
    ],
)
def test_a_bad_reference_is_refused_before_connecting(reference, error):
    with pytest.raises(CommandError, match=error):
        call_command(
            "volunteer", "--project=p", f"--reference={reference}", "--url=ws://0.0.0.0:9/"
        )


def test_a_volunteer_that_never_connects_fails_and_says_why(tmp_path):
    """Nothing listens on the port: not "no work", but an error and a non-zero exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(CommandError, match=rf"never connected to ws://127.0.0.1:{port}/ws/worker/"):
        call_command(
            "volunteer",
            "--project=demo",
            f"--url=ws://127.0.0.1:{port}/ws/worker/",
            "--until-idle=1",
            "--workers=1",
            "--benchmark=1e8",
            f"--state={tmp_path / 'state.json'}",
        )


def test_volunteers_leaving_abruptly_leave_nothing_in_the_server_log(platform):
    """A client that sends a heartbeat and goes at once (a close frame, a bare TCP close, a
    reset) is a volunteer leaving, not a server failure: no ERROR line, no traceback."""
    import asyncio
    import contextlib
    import struct

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    url = platform.url
    origin = "http://" + url.split("/")[2]
    start = len(platform.log.read_text())

    async def leave(how: str) -> None:
        async with connect(url, origin=origin, open_timeout=10, close_timeout=1) as ws:
            await ws.send(
                json.dumps(
                    {"type": "hello", "v": 1, "project": "keysearch",
                     "capabilities": {"cores": 1, "platform": "test", "wasm": True,
                                      "benchmark_fpops": 1e9}}
                )
            )  # fmt: skip
            assert json.loads(await ws.recv())["type"] == "welcome"
            await ws.send(json.dumps({"type": "heartbeat"}))
            if how == "close":
                return  # the context manager sends a close frame at once
            sock = ws.transport.get_extra_info("socket")
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.transport.abort()

    async def all_of_them() -> None:
        for _ in range(5):
            await leave("close")
        for how in ("tcp", "reset"):
            for _ in range(5):
                # The client's own view of the socket it aborted is no concern here.
                with contextlib.suppress(OSError, ConnectionClosed):
                    await leave(how)
        await asyncio.sleep(1.5)

    asyncio.run(all_of_them())

    log = platform.log.read_text()[start:]
    assert " ERROR " not in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
