"""Simulated volunteers: many asyncio WebSocket clients in one OS process, each an anonymous
host speaking the real protocol (docs/protocol.md).

A volunteer says hello (naming the project, with the Origin of the server's own pages),
keeps up to ``prefetch`` tasks held by requesting what it lacks once it holds half or
fewer (as the browser client does: the request rides on the result that brings it down to
half, ``result.request``, answered in the result's ack, and goes on its own only when there
is no result to send), "computes" each task in turn by
sleeping ``task_seconds`` (one core), answers with the app's reference output and
``cpu_time = task_seconds``, and asks again after min(retry_after, 1 s) when an answer is
empty. It stays under the server's message rate (from ``welcome.limits``), re-sends results
after a ``rate_limited`` or ``server_error`` answer, and reconnects as the same host (its
signed token) if the connection drops, carrying on with ``welcome.resume``. Given several
``--url``, a volunteer starts on one of them and, when that process stops answering, moves
on to the next, as a load balancer in front of the ASGI processes would send it. Each
reconnection is logged (when, where from, where to, how many leased tasks the server handed
back). Each volunteer is two small coroutines and no threads, so a process holds thousands.

The process runs until SIGTERM, then writes what it measured as JSON to ``--out``::

    python -m bench.harness.volunteers --url ws://127.0.0.1:8001/ws/worker/ \\
        --first 0 --count 100 --project bench --task-seconds 0 --prefetch 2 --out v.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import signal
import sys
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.harness.workload import double

VERSION = 1
USER_AGENT = "socialgrid-bench/1"
WELCOME_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0  # no answer for this long: the request was lost, ask again
MAX_RETRY_WAIT = 1.0  # the bench caps an empty assign's retry_after at this
RESEND_AFTER = 2.0
RECONNECT_AFTER = 1.0
STOP_GRACE = 5.0
FATAL_CLOSES = {4000, 4001, 4003, 4004}
MAX_NOTES = 20
MAX_RECONNECTS = 100_000


@dataclass
class Reconnect:
    """A session that ended and the next one that began: epoch seconds, URLs, and the tasks
    the server's welcome handed back (``resume``) and the results sent again."""

    lost_at: float
    welcomed_at: float
    from_url: str
    to_url: str
    resumed: int
    resent: int


@dataclass
class Tally:
    """What one process's volunteers saw; times are epoch seconds (one clock per machine).

    ``lease_ms``: per request answered with at least one task, from sending it (a request
    of its own, or a result carrying it) to receiving that answer (an assign, or the ack of
    the result); ``lease_at``: when each of those answers came. ``last_welcome``: when the
    last of the process's volunteers was first welcomed (the end of its ramp)."""

    volunteers: int = 0
    welcomed: int = 0
    last_welcome: float | None = None
    lease_ms: list[float] = field(default_factory=list)
    lease_at: list[float] = field(default_factory=list)
    requests: int = 0  # requests sent on their own
    requests_on_results: int = 0  # requests that rode on a result
    empty_assigns: int = 0
    tasks_assigned: int = 0
    results_sent: int = 0
    acked: list[int] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    credit_messages: int = 0
    cancelled: int = 0
    disconnects: int = 0
    reconnects: list[Reconnect] = field(default_factory=list)
    lost_requests: int = 0
    busy_s: float = 0.0
    wall_s: float = 0.0
    first_assign: float | None = None
    last_ack: float | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text[:300])

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "refused": dict(self.refused), "errors": dict(self.errors)}

    def reconnected(self, entry: Reconnect) -> None:
        if len(self.reconnects) < MAX_RECONNECTS:
            self.reconnects.append(entry)


class Bucket:
    """A token bucket that waits: keeps a client under the server's rate limit."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = max(rate, 0.1), max(burst, 1.0)
        self.tokens, self.updated = self.burst, time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate)


class SessionFailure(Exception):
    pass


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


class SimVolunteer:
    def __init__(
        self,
        urls: list[str],
        project: str,
        task_seconds: float,
        prefetch: int,
        tally: Tally,
        jitter: float = 0.0,
    ) -> None:
        self.urls, self.at = urls, 0
        self.origin, self.project = origin_of(urls[0]), project
        self.task_seconds, self.prefetch, self.tally = task_seconds, prefetch, tally
        self.jitter = jitter
        self.host: str | None = None
        self.token: str | None = None
        self.queue: deque[dict[str, Any]] = deque()
        self.unacked: dict[int, tuple[str, float]] = {}  # replica -> (result frame, sent at)
        self.request_at: float | None = None  # the outstanding request went out then
        self.next_request = 0.0
        self.resend_at: float | None = None
        self.heartbeat = 30.0
        self.bucket = Bucket(18.0, 20.0)
        self.wake = asyncio.Event()
        self.first_assign: float | None = None
        self.last_result: float | None = None
        self.busy = 0.0
        self.lost: tuple[float, str] | None = None  # when and where the last session ended
        self.session_url = urls[0]

    async def run(self, delay: float = 0.0) -> None:
        """Compute until cancelled, reconnecting when the connection drops."""
        try:
            await asyncio.sleep(delay)
            while True:
                url = self.urls[self.at]
                try:
                    async with connect(
                        url,
                        origin=self.origin,
                        user_agent_header=USER_AGENT,
                        proxy=None,
                        compression=None,
                        open_timeout=30,
                        close_timeout=2,
                        max_size=2**24,
                    ) as ws:
                        self.session_url = url
                        await self._session(ws)
                except ConnectionClosed as e:
                    self._ended()
                    self.tally.note(f"connection closed: {e}")
                    if e.rcvd is not None and e.rcvd.code in FATAL_CLOSES:
                        return
                except OSError as e:
                    # Nothing answers there (a process that died): try the next one.
                    self._ended()
                    self.tally.note(f"{type(e).__name__}: {e}")
                    self.at = (self.at + 1) % len(self.urls)
                except Exception as e:
                    # Refused handshakes, timeouts, malformed frames: note it, connect again.
                    self._ended()
                    self.tally.note(f"{type(e).__name__}: {e}")
                await asyncio.sleep(RECONNECT_AFTER)
        finally:
            self.tally.busy_s += self.busy
            if self.first_assign is not None and self.last_result is not None:
                self.tally.wall_s += max(0.0, self.last_result - self.first_assign)

    def _ended(self) -> None:
        self.tally.disconnects += 1
        if self.lost is None and self.host is not None:
            self.lost = (time.time(), self.session_url)

    def _hello(self) -> dict[str, Any]:
        return hello_message(self.project, self.host, self.token)

    async def _session(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps(self._hello()))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), WELCOME_TIMEOUT))
        if welcome.get("type") != "welcome":
            raise SessionFailure(f"expected welcome, got {str(welcome)[:200]}")
        if self.host is None:
            self.tally.welcomed += 1
            self.tally.last_welcome = time.time()
        self.host, self.token = welcome["host"], welcome["host_token"]
        limits = welcome.get("limits") or {}
        rate = float(limits.get("messages_per_second", 20.0))
        self.bucket = Bucket(0.9 * rate, rate)
        self.heartbeat = float(limits.get("heartbeat_seconds", 30.0))
        self.request_at, self.next_request = None, 0.0
        reader = asyncio.create_task(self._read(ws))
        try:
            resume = welcome.get("resume") or []
            resent = await self._resume(ws, resume)
            if self.lost is not None:
                lost_at, from_url = self.lost
                self.lost = None
                self.tally.reconnected(
                    Reconnect(lost_at, time.time(), from_url, self.session_url, len(resume), resent)
                )
            await self._work(ws, reader)
        finally:
            reader.cancel()
        reader.result()  # the reason the session ended (ConnectionClosed, bad JSON)
        raise SessionFailure("the server ended the session")

    async def _resume(self, ws: ClientConnection, tasks: list[dict[str, Any]]) -> int:
        """After a reconnect: results the server has not recorded go again, the rest of
        the replicas it still leases to this host are computed; returns how many went again.
        The last result sent again carries the request, if one is due: the server has the
        others by then."""
        queued = {t["replica"] for t in self.queue}
        again = []
        for task in tasks:
            replica = task["replica"]
            if replica in self.unacked:
                again.append(replica)
            elif replica not in queued:
                self.queue.append(task)
        for k, replica in enumerate(again, 1):
            await self._send_result(ws, replica, self.unacked[replica][0], ride=k == len(again))
        return len(again)

    async def _send(self, ws: ClientConnection, text: str, request: bool = False) -> None:
        await self.bucket.take()
        if request:
            # Set before sending: the answer may be read while the send is still awaited.
            self.request_at = time.monotonic()
        await ws.send(text)

    def _wanted(self, now: float) -> int:
        """Tasks to ask for now: none while a request is out, an empty answer's wait lasts,
        or more than half of ``prefetch`` is held; otherwise what it lacks."""
        if self.request_at is not None or now < self.next_request:
            return 0
        held = len(self.queue)
        return min(64, self.prefetch - held) if held <= self.prefetch // 2 else 0

    async def _send_result(self, ws: ClientConnection, replica: int, text: str, ride: bool) -> None:
        """A result (``text``, kept as it is for sending again), with the request riding on
        it when ``ride`` and one is due."""
        self.unacked[replica] = (text, time.monotonic())
        n = self._wanted(time.monotonic()) if ride else 0
        if n > 0:
            self.tally.requests_on_results += 1
            await self._send(ws, f'{text[:-1]},"request":{n}}}', request=True)
        else:
            await self._send(ws, text)

    async def _work(self, ws: ClientConnection, reader: asyncio.Task[None]) -> None:
        while not reader.done():
            now = time.monotonic()
            if self.resend_at is not None and now >= self.resend_at:
                await self._resend(ws)
            if self.request_at is not None and now - self.request_at > REQUEST_TIMEOUT:
                self.tally.lost_requests += 1
                self.request_at = None
            n = self._wanted(now)
            if n > 0:
                self.tally.requests += 1
                await self._send(ws, json.dumps({"type": "request", "n": n}), request=True)
            if self.queue:
                await self._compute(ws, self.queue.popleft())
                continue
            self.wake.clear()
            if self.request_at is not None:
                timeout = REQUEST_TIMEOUT - (now - self.request_at)
            else:
                timeout = self.next_request - now
            if self.resend_at is not None:
                timeout = min(timeout, self.resend_at - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.0, timeout))

    def answer(self, data: Any) -> Any:
        """The output sent for a task's input: the app's reference."""
        return double(data)

    async def _compute(self, ws: ClientConnection, task: dict[str, Any]) -> None:
        seconds = self.task_seconds * (1.0 + random.uniform(-self.jitter, self.jitter))
        remaining = seconds
        while remaining > 0:
            step = min(remaining, self.heartbeat)
            await asyncio.sleep(step)
            remaining -= step
            if remaining > 0:  # a long task: keep the connection from going idle
                await self._send(ws, '{"type":"heartbeat"}')
        self.busy += seconds
        replica = task["replica"]
        text = json.dumps(
            {
                "type": "result",
                "replica": replica,
                "lease": task["lease"],
                "output": self.answer(task["input"]),
                "cpu_time": seconds,
            },
            separators=(",", ":"),
        )
        await self._send_result(ws, replica, text, ride=True)
        self.tally.results_sent += 1
        self.last_result = time.monotonic()

    async def _resend(self, ws: ClientConnection) -> None:
        """Results sent before a rate_limited or server_error answer may have been dropped."""
        cutoff = (self.resend_at or 0.0) - RESEND_AFTER
        self.resend_at = None
        for replica, (text, sent_at) in list(self.unacked.items()):
            if sent_at <= cutoff:
                await self._send(ws, text)
                self.unacked[replica] = (text, time.monotonic())

    # --- what the server says ---------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        try:
            await self._dispatch(ws)
        finally:
            self.wake.set()  # the main loop sees at once that the session is over

    async def _dispatch(self, ws: ClientConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "assign":
                self._on_assign(message)
            elif kind == "ack" and message.get("of") == "result":
                if self.unacked.pop(message.get("replica"), None) is not None:
                    self.tally.acked.append(message["replica"])
                    self.tally.last_ack = time.time()
                if "tasks" in message:  # the answer to the request the result carried
                    self._on_assign(message)
            elif kind == "error":
                self._on_error(message)
            elif kind == "cancel":
                dropped = set(message.get("replicas") or [])
                self.queue = deque(t for t in self.queue if t["replica"] not in dropped)
                self.tally.cancelled += len(dropped)
            elif kind == "credit":
                self.tally.credit_messages += 1
            self.wake.set()

    def _on_assign(self, message: dict[str, Any]) -> None:
        now = time.monotonic()
        tasks = message.get("tasks") or []
        if self.request_at is not None and tasks:
            self.tally.lease_ms.append((now - self.request_at) * 1000.0)
            self.tally.lease_at.append(time.time())
        self.request_at = None
        if not tasks:
            self.tally.empty_assigns += 1
            retry = message.get("retry_after") or MAX_RETRY_WAIT
            self.next_request = now + min(float(retry), MAX_RETRY_WAIT)
            return
        if self.first_assign is None:
            self.first_assign = now
            epoch = time.time()
            if self.tally.first_assign is None or epoch < self.tally.first_assign:
                self.tally.first_assign = epoch
        held = {t["replica"] for t in self.queue} | set(self.unacked)
        self.queue.extend(t for t in tasks if t["replica"] not in held)
        self.tally.tasks_assigned += len(tasks)
        self.next_request = now

    def _on_error(self, message: dict[str, Any]) -> None:
        code = str(message.get("code"))
        self.tally.errors[code] += 1
        replica = message.get("replica")
        if replica is not None and self.unacked.pop(replica, None) is not None:
            self.tally.refused[code] += 1
            self.tally.note(f"result for replica {replica} refused: {code}")
        elif code in ("rate_limited", "server_error"):
            # The message that caused it is unknown: a request or a result may be lost.
            # Both go again after a pause, not at once: the server may be in trouble.
            self.request_at = None
            self.next_request = time.monotonic() + MAX_RETRY_WAIT
            self.resend_at = time.monotonic() + RESEND_AFTER


# --- the process ----------------------------------------------------------------------------


def hello_message(project: str, host: str | None = None, token: str | None = None) -> dict:
    """A one-core bench host's hello; without host and token the server creates a host."""
    return {
        "type": "hello",
        "v": VERSION,
        "host": host,
        "host_token": token,
        "project": project,
        "capabilities": {
            "cores": 1,
            "memory_mb": 1024,
            "user_agent": USER_AGENT,
            "platform": f"bench-{platform.machine().lower()}"[:40],
            "wasm": False,
            "simd": False,
            "threads": False,
            "benchmark_fpops": 1e9,
        },
    }


def raise_fd_limit() -> None:
    """Thousands of sockets need more than the usual 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def run_volunteers(args: argparse.Namespace) -> Tally:
    tally = Tally(volunteers=args.count)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    volunteers = [
        SimVolunteer(
            rotated(args.url, args.first + k),
            args.project,
            args.task_seconds,
            args.prefetch,
            tally,
            args.task_jitter,
        )
        for k in range(args.count)
    ]
    tasks = [
        asyncio.create_task(v.run(delay=args.ramp * k / max(1, args.count)))
        for k, v in enumerate(volunteers)
    ]
    await stop.wait()
    for task in tasks:
        task.cancel()
    # Cancelled volunteers close their sockets; a slow closing handshake is not waited for.
    await asyncio.wait(tasks, timeout=STOP_GRACE)
    return tally


def rotated(urls: list[str], k: int) -> list[str]:
    """Volunteer k starts on the k-th URL (round robin) and falls over to the ones after it."""
    i = k % len(urls)
    return urls[i:] + urls[:i]


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", required=True, help="ws://…/ws/worker/")
    parser.add_argument("--first", type=int, default=0, help="global index of the first one")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--task-seconds", type=float, default=0.0)
    parser.add_argument("--task-jitter", type=float, default=0.0)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--ramp", type=float, default=1.0, help="spread the starts over this")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    started = time.monotonic()
    try:
        import uvloop  # what uvicorn runs on too: the clients' CPU stays small
    except ImportError:
        uvloop = None
    tally = (uvloop.run if uvloop else asyncio.run)(run_volunteers(args))
    write_json(args.out, tally.as_dict())
    print(
        f"{tally.welcomed}/{tally.volunteers} volunteers welcomed, {tally.results_sent} results "
        f"sent, {len(tally.acked)} acked, {tally.disconnects} disconnects in "
        f"{time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
