"""Idle volunteer connections: what one ASGI process pays, in memory and CPU, for each
volunteer that is connected, has said hello and then only sends heartbeats.

    .venv/bin/python -m bench.idle_connections --connections 10000
        [--processes 4] [--rate 300] [--steady 20] [--workers 1]

A real deployment on this machine (bench/harness/deployment.py): a fresh PostgreSQL database
and Redis database, ONE web process, ``--workers`` Celery workers (0 or 1) and Celery beat,
each started with the Procfile's command; one active project and no work. Client processes (this
module run as ``python -m bench.idle_connections client ...``) open their share of the
connections at ``--rate`` per second in all; each says hello as an anonymous host and then
answers the server's WebSocket pings (every ``PROTOCOL_PING_SECONDS``, as the Procfile's web
command sends them) and sends a heartbeat every ``welcome.limits.heartbeat_seconds``, never a
request. A keep-alive is either: a ping answered or a heartbeat answered. The ASGI
process's VmRSS is read before the first connection (after a short warm-up) and at the end
of a ``--steady`` window once every connection is welcomed; its VmHWM, and the CPU of every
process over the window, are read too. Logs, table.txt and results.json go to
bench/out/idle-<timestamp>/. The exit code is 0 only when every connection was welcomed and none
was lost. See bench/README.md for the method.

The floor: unless ``--no-floor``, the same clients then open the same number of connections
to a bare endpoint (:func:`floor_application`: no Django, no Channels; it answers a hello with
a welcome naming the same heartbeat interval and a heartbeat with a heartbeat frame), started
with the Procfile's web command, the application being the only thing changed. Its CPU per
heartbeat over a window as long is what the ASGI server and the kernel cost for one, before
any of socialgrid's code runs: the row the figure above is measured against.

The window is as long as the heartbeat interval unless ``--steady`` says otherwise, so that each
connection's heartbeat falls into it once, beside the pings of the interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from bench.harness import metrics
from bench.harness.deployment import PYTHON, Config, Deployment, DeploymentError, Managed
from bench.harness.metrics import fmt, percentile, render_table
from bench.harness.run import add_deployment_options, guarded_run, run_record, save_results
from bench.harness.volunteers import USER_AGENT, hello_message, origin_of, raise_fd_limit
from compute.protocol import HEARTBEAT, heartbeat_frame

PROJECT_SLUG = "idle"
TARGET_KIB = 50.0  # the target: <= 50 KiB of RSS per idle connection
TARGET_HEARTBEAT_MS = 0.1  # the target: <= 0.1 ms of CPU per keep-alive (ping or heartbeat)
# What a deployment runs: their CPU in the window, per heartbeat, is the server's cost of one.
SERVER_ROLES = ("asgi", "worker", "beat", "postgresql", "redis")
CONNECTIONS_PER_CLIENT = 2500  # the default number of client processes follows from this
OPEN_TIMEOUT = 30.0
WELCOME_TIMEOUT = 60.0
CLOSE_TIMEOUT = 2.0
STALL_SECONDS = OPEN_TIMEOUT + WELCOME_TIMEOUT + 10.0
CLIENT_STOP_GRACE = 10.0
CLIENT_STOP_TIMEOUT = 30.0
STATUS_EVERY = 1.0
POLL_SECONDS = 0.5
SETTLE_SECONDS = 2.0  # after the warm-up, and after the last welcome
FLOOR_APP = "bench.idle_connections:floor_application"
FD_HEADROOM = 256  # descriptors the ASGI process needs besides the sockets
MAX_NOTES = 20

# Every item of the table but the per-process rows (one per process, named after it).
ITEMS = (
    "connections", "client processes", "connect rate", "pending welcomes", "steady window",
    "warm-up", "ASGI processes", "Celery workers", "settings", "heartbeat / idle close",
    "cpu model", "cores", "versions", "load average before", "load average after",
    "CPUs busy in the window",
    "requested", "welcomed", "failed", "time to connect all", "welcome latency p50",
    "welcome latency p99", "heartbeats in the window", "pings in the window",
    "server log errors",
    "server errors at close",
    "RSS before", "RSS after", "KiB per connection", "peak RSS", "RSS in the window",
    "idle CPU", "CPU per keep-alive", "CPU per idle connection", "CPU while connecting",
    "open files limit",
    "socialgrid / floor",
    "redis memory before", "redis memory after", "postgresql memory before",
    "postgresql memory after", "status",
)  # fmt: skip


class HarnessError(RuntimeError):
    pass


# === The client processes ===================================================================


@dataclass
class Tally:
    """What one client process saw; times are epoch seconds (one clock per machine)."""

    requested: int = 0
    attempted: int = 0
    welcomed: int = 0
    failed: int = 0  # never welcomed
    dropped: int = 0  # closed or lost after the welcome, before the client stopped
    heartbeats_sent: int = 0
    heartbeats_answered: int = 0
    pings_answered: int = 0  # the server's WebSocket pings (the library sends the pong)
    heartbeat_seconds: float | None = None
    unexpected: dict[str, int] = field(default_factory=dict)
    first_attempt: float | None = None
    last_welcome: float | None = None
    welcome_ms: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def resolved(self) -> int:
        return self.welcomed + self.failed

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text[:300])


# === The floor: a bare endpoint speaking just enough of the protocol ===========================


async def floor_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare endpoint (:func:`bench.harness.ceiling.serve_bare`): a heartbeat gets the
    server's own heartbeat frame, anything else a welcome naming ``FLOOR_HEARTBEAT_SECONDS``."""
    from bench.harness.ceiling import serve_bare

    beat = float(os.environ.get("FLOOR_HEARTBEAT_SECONDS", "30"))
    welcome = json.dumps({"type": "welcome", "limits": {"heartbeat_seconds": beat}})

    def answer(text: str) -> str:
        return heartbeat_frame(time.time()) if text == HEARTBEAT else welcome

    await serve_bare(scope, receive, send, answer)


def hello(project: str) -> dict[str, Any]:
    """An anonymous host's first hello (no host id, no token): the server creates a host."""
    return hello_message(project)


class KeptAlive(ClientConnection):
    """A client connection counting the server's pings into ``tally`` (the library answers
    each with a pong, as a browser's network stack does)."""

    tally: Tally | None = None

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING and self.tally is not None:
            self.tally.pings_answered += 1
        super().process_event(event)


def open_socket(url: str, tally: Tally | None = None) -> connect:
    """As a browser: the Origin of the server's own pages, no compression, and no pings of
    its own (it answers the server's)."""
    return connect(
        url,
        origin=origin_of(url),
        user_agent_header=USER_AGENT,
        proxy=None,
        compression=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
        ping_interval=None,
        max_size=2**20,
        create_connection=type("KeptAlive", (KeptAlive,), {"tally": tally}),
    )


async def say_hello(ws: ClientConnection, project: str) -> dict[str, Any]:
    await ws.send(json.dumps(hello(project)))
    async with asyncio.timeout(WELCOME_TIMEOUT):
        welcome = json.loads(await ws.recv())
    if welcome.get("type") != "welcome":
        raise HarnessError(f"expected welcome, got {str(welcome)[:200]}")
    return welcome


async def idle_connection(url: str, project: str, tally: Tally, pending: asyncio.Semaphore) -> None:
    """One volunteer: connect, hello, then a heartbeat every heartbeat_seconds until
    cancelled. No reconnection: a connection that fails or drops is counted. The caller has
    taken a ``pending`` slot; it is given back once the welcome arrived or the attempt
    ended."""
    loop = asyncio.get_running_loop()
    tally.attempted += 1
    if tally.first_attempt is None:
        tally.first_attempt = time.time()
    started = loop.time()
    welcomed = False
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            pending.release()

    try:
        async with open_socket(url, tally) as ws:
            try:
                welcome = await say_hello(ws, project)
            finally:
                release()
            welcomed = True
            tally.welcomed += 1
            tally.welcome_ms.append((loop.time() - started) * 1000.0)
            tally.last_welcome = time.time()
            beat = float((welcome.get("limits") or {}).get("heartbeat_seconds", 30.0))
            tally.heartbeat_seconds = beat
            next_beat = loop.time() + beat
            while True:
                try:
                    async with asyncio.timeout_at(next_beat):
                        raw = await ws.recv()
                except TimeoutError:
                    await ws.send(HEARTBEAT)
                    tally.heartbeats_sent += 1
                    next_beat += beat
                    continue
                kind = str(json.loads(raw).get("type"))
                if kind == "heartbeat":
                    tally.heartbeats_answered += 1
                else:
                    tally.unexpected[kind] = tally.unexpected.get(kind, 0) + 1
    except asyncio.CancelledError:
        raise
    except Exception as e:
        if isinstance(e, ConnectionClosed) and e.rcvd is not None:
            why = f"closed {e.rcvd.code} {e.rcvd.reason}".strip()
        else:
            why = f"{type(e).__name__}: {e}"
        if welcomed:
            tally.dropped += 1
            tally.note(f"dropped after the welcome: {why}")
        else:
            tally.failed += 1
            tally.note(f"not welcomed: {why}")
    finally:
        release()


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def status(tally: Tally) -> dict[str, Any]:
    return {**asdict(tally), "resolved": tally.resolved}


async def run_clients(args: argparse.Namespace) -> Tally:
    tally = Tally(requested=args.count)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def report() -> None:
        while True:
            write_json(args.out, status(tally))
            await asyncio.sleep(STATUS_EVERY)

    reporter = asyncio.create_task(report())
    tasks: list[asyncio.Task[None]] = []
    # Connection k opens at k / rate, and only while fewer than --pending are waiting for
    # their welcome: a server slower than the rate is not buried under handshakes that
    # would time out, and the bench measures idle connections, not a connection storm.
    pending = asyncio.Semaphore(args.pending)

    async def launch() -> None:
        start = loop.time()
        for k in range(args.count):
            delay = start + k / args.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await pending.acquire()
            connection = idle_connection(args.url, args.project, tally, pending)
            tasks.append(asyncio.create_task(connection))

    launcher = asyncio.create_task(launch())
    await stop.wait()
    # From here on, closed connections are the client's doing, not losses.
    tally.stopped = True
    reporter.cancel()
    launcher.cancel()
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=CLIENT_STOP_GRACE)
    return tally


def client_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.idle_connections client")
    p.add_argument("--url", required=True, help="ws://.../ws/worker/")
    p.add_argument("--project", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="connections opened per second")
    p.add_argument("--pending", type=int, required=True, help="at most this many not welcomed")
    p.add_argument("--out", type=Path, required=True, help="status file (JSON)")
    return p.parse_args(argv)


def client_main(argv: list[str]) -> int:
    args = client_args(argv)
    raise_fd_limit()
    try:
        import uvloop  # what uvicorn runs on too: the clients' CPU stays small
    except ImportError:
        uvloop = None
    tally = (uvloop.run if uvloop else asyncio.run)(run_clients(args))
    write_json(args.out, status(tally))
    print(
        f"{tally.welcomed}/{tally.requested} welcomed, {tally.failed} failed, "
        f"{tally.dropped} dropped, {tally.heartbeats_sent} heartbeats sent, "
        f"{tally.heartbeats_answered} answered, {tally.pings_answered} pings answered",
        file=sys.stderr,
    )
    return 0


# === The bench ==============================================================================


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.idle_connections", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--connections", type=int, default=10_000, help="idle connections to open")
    p.add_argument(
        "--processes",
        type=int,
        default=0,
        help=f"client processes (0: one per {CONNECTIONS_PER_CLIENT:,} connections, at least 2)",
    )
    p.add_argument("--rate", type=float, default=300.0, help="connections opened per second")
    p.add_argument(
        "--pending",
        type=int,
        default=200,
        help="connections waiting for their welcome at any time, all client processes together",
    )
    p.add_argument(
        "--steady",
        type=float,
        default=0.0,
        help="seconds measured once all are in (0: the heartbeat interval in force)",
    )
    p.add_argument("--warmup", type=int, default=20, help="connections opened and closed first")
    p.add_argument("--workers", type=int, choices=[0, 1], default=1, help="Celery workers")
    p.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="then measure a bare endpoint under the same web command and clients",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=0.0,
        help="seconds for every connection to be welcomed or fail (0: no limit; the bench "
        f"still gives up when none is welcomed or fails for {STALL_SECONDS:.0f} s)",
    )
    add_deployment_options(
        p,
        database_url="postgres://postgres@127.0.0.1:5432/sg_bench_idle",
        redis_url="redis://127.0.0.1:6379/8",
        setting_example="PROTOCOL_HEARTBEAT_SECONDS=5",
    )
    args = p.parse_args(argv)
    if args.processes == 0:
        args.processes = max(2, math.ceil(args.connections / CONNECTIONS_PER_CLIENT))
    args.processes = min(args.processes, max(1, args.connections))
    problems = []
    if args.connections < 1:
        problems.append("--connections must be at least 1")
    if args.processes < 1:
        problems.append("--processes must be at least 1")
    if args.rate <= 0 or args.steady < 0 or args.pending < 1:
        problems.append("--rate and --steady must be > 0, --pending at least 1")
    if args.warmup < 0 or args.connect_timeout < 0:
        problems.append("--warmup and --connect-timeout must be >= 0")
    if problems:
        p.error("; ".join(problems))
    if args.connect_timeout == 0:
        args.connect_timeout = math.inf
    return args


# --- /proc ----------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    try:
        text = (metrics.PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def open_files_limit(pid: int) -> int | None:
    try:
        text = (metrics.PROC / str(pid) / "limits").read_text()
    except OSError:
        return None
    match = re.search(r"^Max open files\s+(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def memory_kib(w: metrics.Watched) -> int | None:
    """A process's VmRSS; for a tree (PostgreSQL), the sum of its processes' Pss."""
    if not w.tree:
        return rss_kib(w.pid)
    pids = [w.pid] + [p for p in metrics.descendants(w.pid) if w.select is None or w.select(p)]
    values = [v for v in (metrics.pss_kib(p) for p in pids) if v is not None]
    return sum(values) if values else None


# --- the run --------------------------------------------------------------------------------


def create_project() -> str:
    """One active public project and no work: an anonymous hello needs nothing more."""
    from django.contrib.auth import get_user_model

    from compute.models import Project

    owner = get_user_model().objects.create_user(username="bench-owner", password=None)
    Project.objects.create(slug=PROJECT_SLUG, name="Idle connections", owner=owner)
    return PROJECT_SLUG


async def warm_up(url: str, project: str, n: int) -> int:
    """Open ``n`` connections, say hello, close them: whatever the ASGI process sets up on
    its first sockets (imports, database threads, the channel layer's connections) is in
    the 'before' figure, not in the per-connection one."""

    async def one() -> bool:
        try:
            async with open_socket(url) as ws:
                await say_hello(ws, project)
            return True
        except Exception:
            return False

    done = 0
    for start in range(0, n, 10):
        results = await asyncio.gather(*(one() for _ in range(min(10, n - start))))
        done += sum(results)
    return done


def start_clients(
    dep: Deployment, args: argparse.Namespace, url: str, role: str = "clients"
) -> list[Managed]:
    procs = []
    for i in range(args.processes):
        first = i * args.connections // args.processes
        count = (i + 1) * args.connections // args.processes - first
        rate = args.rate * count / args.connections
        pending = max(1, round(args.pending * count / args.connections))
        argv = [PYTHON, "-m", "bench.idle_connections", "client", "--url", url,
                "--project", PROJECT_SLUG, "--count", str(count), "--rate", f"{rate:.6g}",
                "--pending", str(pending),
                "--out", str(dep.config.run_dir / f"{role}-{i + 1}.json")]  # fmt: skip
        procs.append(dep.spawn(f"{role}-{i + 1}", role, argv))
    return procs


def read_status(procs: list[Managed]) -> list[dict[str, Any]]:
    out = []
    for p in procs:
        try:
            out.append(json.loads(p.log.with_suffix(".json").read_text()))
        except (OSError, ValueError):
            out.append({})
    return out


def total(statuses: list[dict[str, Any]], key: str) -> int:
    return sum(int(s.get(key) or 0) for s in statuses)


def check_alive(dep: Deployment, clients: list[Managed]) -> None:
    dep.check_alive()
    for c in clients:
        if c.popen.poll() is not None:
            raise HarnessError(f"{c.name} exited with code {c.popen.returncode}; {c.log}")


def wait_connected(
    dep: Deployment, clients: list[Managed], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Until every connection is welcomed or has failed, --connect-timeout, or no progress
    for STALL_SECONDS (longer than a client waits for a handshake and a welcome)."""
    started = time.monotonic()
    last_print = last_progress = started
    resolved = 0
    while True:
        statuses = read_status(clients)
        now = time.monotonic()
        if total(statuses, "resolved") > resolved:
            resolved, last_progress = total(statuses, "resolved"), now
        if resolved >= args.connections:
            return statuses
        check_alive(dep, clients)
        if now - started > args.connect_timeout or now - last_progress > STALL_SECONDS:
            return statuses
        if now - last_print >= 5.0:
            last_print = now
            print(
                f"[{now - started:6.1f} s] {total(statuses, 'welcomed'):,}/{args.connections:,} "
                f"welcomed, {total(statuses, 'failed'):,} failed",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(POLL_SECONDS)


def log_errors(path: Path, offset: int = 0) -> dict[str, Any]:
    """ERROR lines of a process's log from ``offset`` on, the commonest exception among
    them, and where the log ends."""
    try:
        data = path.read_bytes()
    except OSError:
        return {"count": 0, "commonest": "", "end": offset}
    text = data[offset:].decode(errors="replace")
    errors = re.findall(r"^ERROR\b.*$", text, re.MULTILINE)
    raised = re.findall(r"^[\w.]+(?:Error|Exception)\b.*$", text, re.MULTILINE)
    commonest = max(set(raised), key=raised.count) if raised else ""
    return {"count": len(errors), "commonest": commonest[:200], "end": len(data)}


def measure(dep: Deployment, args: argparse.Namespace, slug: str) -> dict[str, Any]:
    """Warm up, read 'before', connect everyone, hold the steady window, read 'after'."""
    from django.conf import settings

    from bench.harness.run import service_rows

    (asgi,) = [p for p in dep.processes if p.role == "asgi"]
    url = f"ws://127.0.0.1:{asgi.port}/ws/worker/"
    limit = open_files_limit(asgi.pid)
    if limit is not None and limit < args.connections + FD_HEADROOM:
        raise HarnessError(
            f"the ASGI process may open {limit} files: too few for {args.connections} sockets"
        )
    warmed = asyncio.run(warm_up(url, slug, args.warmup))
    if warmed < args.warmup:
        raise HarnessError(f"only {warmed}/{args.warmup} warm-up connections were welcomed")
    time.sleep(SETTLE_SECONDS)
    rows = service_rows(dep.config)
    services = [w for w in rows if w.role in ("postgresql", "redis")]
    before = {w.role: memory_kib(w) for w in services}
    asgi_before = rss_kib(asgi.pid)
    cpu_before = metrics.cpu_seconds(asgi.pid) or 0.0
    print(
        f"opening {args.connections:,} connections from {args.processes} process(es) at "
        f"{args.rate:g}/s ...",
        file=sys.stderr,
        flush=True,
    )
    connect_started = time.monotonic()
    clients = start_clients(dep, args, url)
    started = [p.pid for p in dep.processes]
    connected = wait_connected(dep, clients, args)
    connect_wall = time.monotonic() - connect_started
    connect_cpu = (metrics.cpu_seconds(asgi.pid) or 0.0) - cpu_before

    why = ""
    window = None
    if total(connected, "welcomed") < args.connections:
        why = (
            f"{total(connected, 'welcomed'):,}/{args.connections:,} connections welcomed "
            f"({total(connected, 'failed'):,} failed)"
        )
    else:
        window = steady_window(dep, clients, args, rows)
    after = {w.role: memory_kib(w) for w in services}
    asgi_after = rss_kib(asgi.pid)
    peak = metrics.peak_rss_kib(asgi.pid)
    end = read_status(clients)
    errors_idle = log_errors(asgi.log)
    dep.stop(roles=["clients"], timeout=CLIENT_STOP_TIMEOUT)
    time.sleep(SETTLE_SECONDS)  # the server handles the disconnects
    errors_at_close = log_errors(asgi.log, errors_idle["end"])
    final = read_status(clients)
    return {
        "why": why,
        "url": url,
        "warmed": warmed,
        "idle_seconds": settings.PROTOCOL["IDLE_SECONDS"],
        "open_files_limit": limit,
        "asgi": {"name": asgi.name, "pid": asgi.pid, "log": str(asgi.log)},
        "rss_before_kib": asgi_before,
        "rss_after_kib": asgi_after,
        "peak_rss_kib": peak,
        "connect_wall_s": connect_wall,
        "connect_cpu_s": connect_cpu,
        "connected": connected,
        "end": end,
        "final": final,
        "window": window,
        "services": {
            w.role: {"before_kib": before[w.role], "after_kib": after[w.role], "tree": w.tree}
            for w in services
        },
        "log_errors": errors_idle,
        "log_errors_at_close": errors_at_close,
        "pids": started,
    }


def steady_window(
    dep: Deployment,
    clients: list[Managed],
    args: argparse.Namespace,
    services: list[metrics.Watched],
) -> dict[str, Any]:
    """``--steady`` seconds with every connection open: CPU of every process (``services``:
    the rows of the services and of the bench's own database backend), the ASGI process's
    RSS each second, heartbeats in the window."""
    time.sleep(SETTLE_SECONDS)
    (asgi,) = [p for p in dep.processes if p.role == "asgi"]
    watched = dep.watched() + services
    watched.append(metrics.Watched("harness", "harness", os.getpid(), detail="this process"))
    sampler = metrics.Sampler(watched)
    first = read_status(clients)
    sampler.start_window()
    rss: list[int] = []
    deadline = time.monotonic() + args.steady
    while True:
        value = rss_kib(asgi.pid)
        if value is not None:
            rss.append(value)
        check_alive(dep, clients)
        if time.monotonic() >= deadline:
            break
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    wall, busy, usage = sampler.end_window()
    last = read_status(clients)
    return {
        "wall_s": wall,
        "machine_busy": busy,
        "usage": [asdict(u) for u in usage],
        "rss_min_kib": min(rss) if rss else None,
        "rss_max_kib": max(rss) if rss else None,
        "heartbeats_sent": total(last, "heartbeats_sent") - total(first, "heartbeats_sent"),
        "heartbeats_answered": total(last, "heartbeats_answered")
        - total(first, "heartbeats_answered"),
        "pings_answered": total(last, "pings_answered") - total(first, "pings_answered"),
        "dropped_in_window": total(last, "dropped") - total(first, "dropped"),
    }


def measure_floor(dep: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    """The bare endpoint under the Procfile's web command, the same clients and connections,
    a window as long as the steady one: its CPU per heartbeat."""
    from django.conf import settings

    from bench.harness.deployment import free_port
    from socialgrid import procfile

    port = free_port()
    beat = settings.PROTOCOL["HEARTBEAT_SECONDS"]
    server = dep.spawn(
        "floor-web",
        "floor",
        procfile.web_argv_for(FLOOR_APP),
        port=port,
        variables={"HOST": "127.0.0.1", "PORT": str(port), "FLOOR_HEARTBEAT_SECONDS": str(beat)},
        process_type="web",
    )
    print(f"the floor: {args.connections:,} connections to a bare endpoint ...", file=sys.stderr)
    try:
        dep.wait_ready(server)
        clients = start_clients(dep, args, f"ws://127.0.0.1:{port}/ws/worker/", "floor-clients")
        connected = wait_connected(dep, clients, args)
        welcomed = total(connected, "welcomed")
        if welcomed < args.connections:
            return {"why": f"{welcomed:,}/{args.connections:,} welcomed by the bare endpoint"}
        time.sleep(SETTLE_SECONDS)
        first = read_status(clients)
        cpu_before = metrics.cpu_seconds(server.pid)
        started = time.monotonic()
        while time.monotonic() - started < args.steady:
            time.sleep(min(1.0, max(0.0, args.steady - (time.monotonic() - started))))
            if server.popen.poll() is not None:
                return {"why": f"the bare endpoint exited; {server.log}"}
        cpu_after = metrics.cpu_seconds(server.pid)
        wall = time.monotonic() - started
        last = read_status(clients)
    finally:
        dep.stop(roles=["floor-clients", "floor"], timeout=CLIENT_STOP_TIMEOUT)
    answered = total(last, "heartbeats_answered") - total(first, "heartbeats_answered")
    pings = total(last, "pings_answered") - total(first, "pings_answered")
    kept = answered + pings
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "why": "",
        "app": FLOOR_APP,
        "welcomed": welcomed,
        "window_s": wall,
        "heartbeats_answered": answered,
        "pings_answered": pings,
        "cpu_s": cpu,
        "cpu_percent": 100.0 * cpu / wall if cpu is not None else None,
        "cpu_per_keepalive_ms": 1000.0 * cpu / kept if cpu is not None and kept else None,
    }


def make_run_dir(out: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        run_dir = out / (f"idle-{stamp}" if n == 0 else f"idle-{stamp}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise HarnessError(f"cannot make a run directory in {out}")


def execute(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    from bench.harness.run import service_versions, setup_django

    config = Config(
        run_dir=run_dir,
        out_dir=args.out,
        database_url=args.database_url,
        redis_url=args.redis_url,
        asgi=1,
        workers=args.workers,
        queue=f"sg-bench-{run_dir.name}",
        settings=dict(args.setting),
        port_base=args.port_base,
    )
    data = run_record(args, config, run_dir)
    with Deployment(config) as dep:
        print("preparing: database, migrations, Redis ...", file=sys.stderr, flush=True)
        dep.prepare()
        setup_django(dep.env())
        if not args.steady:
            from django.conf import settings

            args.steady = settings.PROTOCOL["HEARTBEAT_SECONDS"]
        slug = create_project()
        data["machine"].update(service_versions(config))
        print(f"starting 1 ASGI, {args.workers} worker(s), beat ...", file=sys.stderr)
        dep.start()
        data.update(measure(dep, args, slug))
        data["floor"] = measure_floor(dep, args) if args.floor and data["window"] else None
    data["load_after"] = metrics.load_average()
    from django.db import connections

    connections.close_all()
    return data


# --- summary and table ----------------------------------------------------------------------


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    args, config = data["args"], data["config"]
    connected, end, final = data["connected"], data["end"], data["final"]
    window = data["window"] or {}
    welcomed = total(final, "welcomed") or total(end, "welcomed")
    never = total(final, "failed")
    dropped = total(end, "dropped")  # after the welcome, before the clients were stopped
    welcome_ms = [ms for s in final for ms in s.get("welcome_ms") or []]
    firsts = [s["first_attempt"] for s in connected if s.get("first_attempt")]
    lasts = [s["last_welcome"] for s in connected if s.get("last_welcome")]
    connect_s = max(lasts) - min(firsts) if firsts and lasts else None
    unexpected: dict[str, int] = {}
    for s in final:
        for kind, n in (s.get("unexpected") or {}).items():
            unexpected[kind] = unexpected.get(kind, 0) + n
    before, after = data["rss_before_kib"], data["rss_after_kib"]
    per = (after - before) / welcomed if before and after and welcomed else None
    usage = {u["role"]: u for u in window.get("usage", [])}
    # A keep-alive: a heartbeat answered, or a ping of the server's answered by the client.
    answered = (window.get("heartbeats_answered") or 0) + (window.get("pings_answered") or 0)
    asgi_cpu_s = usage.get("asgi", {}).get("cpu_s")
    server_cpu_s = sum(u["cpu_s"] for u in window.get("usage", []) if u["role"] in SERVER_ROLES)
    # Never welcomed, dropped after the welcome, or still waiting for a welcome at the end.
    failed = never + dropped + max(0, args.connections - welcomed - never)
    why = data["why"]
    if not why and failed:
        why = f"{failed:,} connections failed ({never:,} never welcomed, {dropped:,} dropped)"
    beats = [s.get("heartbeat_seconds") for s in final if s.get("heartbeat_seconds")]
    processes = window.get("usage", [])
    cores = data["machine"]["cores"] or 1
    return {
        "status": "ok" if not why else "FAILED",
        "why": why,
        "run_dir": data["run_dir"],
        "started_at": data["started_at"],
        "parameters": {
            "connections": args.connections,
            "processes": args.processes,
            "rate": args.rate,
            "pending": args.pending,
            "steady_s": args.steady,
            "warmup": args.warmup,
            "warmed": data["warmed"],
            "workers": args.workers,
            "settings": config.settings,
            "heartbeat_s": beats[0] if beats else None,
            "idle_close_s": data["idle_seconds"],
            "database_url": config.database_url,
            "redis_url": config.redis_url,
            "url": data["url"],
        },
        "machine": {
            **data["machine"],
            "load_before": data["load_before"],
            "load_after": data["load_after"],
            "busy_in_window": window.get("machine_busy"),
            "bench_share_in_window": sum(p["cpu_percent"] for p in processes) / (100.0 * cores),
        },
        "connections": {
            "requested": args.connections,
            "attempted": total(final, "attempted"),
            "welcomed": welcomed,
            "failed": failed,
            "never_welcomed": never,
            "dropped": dropped,
            "connect_s": connect_s,
            "connect_rate": welcomed / connect_s if connect_s else None,
            "welcome_p50_ms": percentile(welcome_ms, 50),
            "welcome_p99_ms": percentile(welcome_ms, 99),
            "heartbeats_sent_window": window.get("heartbeats_sent"),
            "heartbeats_answered_window": window.get("heartbeats_answered"),
            "pings_answered_window": window.get("pings_answered"),
            "pings_answered": total(final, "pings_answered"),
            "heartbeats_sent": total(final, "heartbeats_sent"),
            "heartbeats_answered": total(final, "heartbeats_answered"),
            "unexpected": unexpected,
            "notes": [n for s in final for n in s.get("notes") or []][:MAX_NOTES],
            "server_log_errors": data["log_errors"]["count"],
            "server_log_error": data["log_errors"]["commonest"],
            "server_errors_at_close": data["log_errors_at_close"]["count"],
            "server_error_at_close": data["log_errors_at_close"]["commonest"],
        },
        "asgi": {
            **data["asgi"],
            "rss_before_kib": before,
            "rss_after_kib": after,
            "peak_rss_kib": data["peak_rss_kib"],
            "kib_per_connection": per,
            "target_kib": TARGET_KIB,
            "within_target": per is not None and per <= TARGET_KIB,
            "rss_window_min_kib": window.get("rss_min_kib"),
            "rss_window_max_kib": window.get("rss_max_kib"),
            "idle_cpu_percent": usage.get("asgi", {}).get("cpu_percent"),
            "idle_cpu_s": asgi_cpu_s,
            # Idle CPU in the window per keep-alive in it (pings and heartbeats answered):
            # what keeping a connection alive costs the process (the periodic host touch
            # rides along).
            "cpu_per_keepalive_ms": (
                1000.0 * asgi_cpu_s / answered if asgi_cpu_s is not None and answered else None
            ),
            "keepalive_target_ms": TARGET_HEARTBEAT_MS,
            "server_cpu_per_keepalive_ms": (1000.0 * server_cpu_s / answered if answered else None),
            # Idle CPU per connection and second, and what 100,000 idle browsers would take.
            "cpu_us_per_connection_s": (
                1e6 * asgi_cpu_s / welcomed / window["wall_s"]
                if asgi_cpu_s is not None and welcomed and window.get("wall_s")
                else None
            ),
            "connect_cpu_percent": (
                100.0 * data["connect_cpu_s"] / data["connect_wall_s"]
                if data["connect_wall_s"]
                else None
            ),
            "open_files_limit": data["open_files_limit"],
        },
        "services": {
            role: {
                **figures,
                "idle_cpu_percent": usage.get(role, {}).get("cpu_percent"),
                "kind": "sum of Pss" if figures["tree"] else "VmRSS",
            }
            for role, figures in data["services"].items()
        },
        "floor": _floor_summary(data.get("floor"), asgi_cpu_s, answered),
        "window_s": window.get("wall_s"),
        "processes": processes,
        "pids": data["pids"],
    }


def _floor_summary(
    floor: dict[str, Any] | None, asgi_cpu_s: float | None, answered: int | None
) -> dict[str, Any] | None:
    if floor is None:
        return None
    ours = 1000.0 * asgi_cpu_s / answered if asgi_cpu_s is not None and answered else None
    base = floor.get("cpu_per_keepalive_ms")
    return {**floor, "ratio": ours / base if ours is not None and base else None}


Row = tuple[str, str, str, str]


def _mib(kib: float | None) -> str:
    return fmt(kib / 1024 if kib is not None else None, 1, " MiB")


def _parameter_rows(p: dict[str, Any]) -> list[Row]:
    s = "parameters"
    settings = ", ".join(f"{k}={v}" for k, v in sorted(p["settings"].items())) or "none"
    heartbeat = fmt(p["heartbeat_s"], 0, " s")
    ping = p["settings"].get("PROTOCOL_PING_SECONDS", "30")
    return [
        (s, "connections", f"{p['connections']:,}",
         "anonymous hosts: hello, then heartbeats, answering the server's pings"),
        (s, "client processes", str(p["processes"]), "asyncio + websockets, no compression"),
        (s, "connect rate", f"{p['rate']:g}/s", "all client processes together"),
        (s, "pending welcomes", f"{p['pending']:,}",
         "at most this many connections opened and not yet welcomed"),
        (s, "steady window", f"{p['steady_s']:g} s", "measured once every connection is in"),
        (s, "warm-up", str(p["warmup"]), "connections opened and closed before 'RSS before'"),
        (s, "ASGI processes", "1", "the Procfile's web command"),
        (s, "Celery workers", str(p["workers"]), "the Procfile's worker command, + 1 beat"),
        (s, "settings", "", settings),
        (s, "heartbeat / idle close", heartbeat,
         f"welcome.limits.heartbeat_seconds; the server pings every {ping} s and closes after "
         f"{p['idle_close_s']:g} s of silence"),
    ]  # fmt: skip


def _machine_rows(m: dict[str, Any]) -> list[Row]:
    def load(values: list[float]) -> str:
        return "1/5/15 min: " + " ".join(f"{x:.2f}" for x in values)

    s = "machine"
    busy = m["busy_in_window"]
    bench = m["bench_share_in_window"]
    versions = (
        f"Python {m['python']}, PostgreSQL {m.get('postgresql', '?')}, Redis {m.get('redis', '?')}"
    )
    return [
        (s, "cpu model", "", m["cpu"]),
        (s, "cores", str(m["cores"]), f"{m['memory_mib']:,} MiB memory; Linux {m['kernel']}"),
        (s, "versions", "", versions),
        (s, "load average before", f"{m['load_before'][0]:.2f}", load(m["load_before"])),
        (s, "load average after", f"{m['load_after'][0]:.2f}", load(m["load_after"])),
        (
            s,
            "CPUs busy in the window",
            "n/a" if busy is None else f"{100 * busy:.0f} %",
            "of all cores (/proc/stat)"
            + (
                ""
                if busy is None
                else f"; this bench's processes {100 * bench:.0f} %, other work "
                f"{100 * max(0.0, busy - bench):.0f} %"
            ),
        ),
    ]


def _connection_rows(c: dict[str, Any]) -> list[Row]:
    s = "connections"
    unexpected = ", ".join(f"{k} {n}" for k, n in c["unexpected"].items()) or "none"
    return [
        (s, "requested", f"{c['requested']:,}", f"{c['attempted']:,} attempted"),
        (s, "welcomed", f"{c['welcomed']:,}", "hello -> welcome"),
        (s, "failed", f"{c['failed']:,}",
         f"never welcomed {c['never_welcomed']:,}; dropped after the welcome {c['dropped']:,}"),
        (s, "time to connect all", fmt(c["connect_s"], 1, " s"),
         f"first connection opened -> last welcome; {fmt(c['connect_rate'], 0)}/s achieved"),
        (s, "welcome latency p50", fmt(c["welcome_p50_ms"], 1, " ms"),
         "TCP connect + WebSocket handshake + hello -> welcome"),
        (s, "welcome latency p99", fmt(c["welcome_p99_ms"], 1, " ms"), ""),
        (s, "heartbeats in the window", fmt(c["heartbeats_answered_window"], 0),
         f"answered, of {fmt(c['heartbeats_sent_window'], 0)} sent; other messages received: "
         f"{unexpected}"),
        (s, "pings in the window", fmt(c["pings_answered_window"], 0),
         "the server's WebSocket pings, each answered with a pong by the client's library"),
        (s, "server log errors", f"{c['server_log_errors']:,}",
         "ERROR lines in the ASGI log, start -> end of the window"
         + (f"; commonest: {c['server_log_error']}" if c["server_log_error"] else "")),
        (s, "server errors at close", f"{c['server_errors_at_close']:,}",
         "ERROR lines while the clients closed their connections"
         + (f"; commonest: {c['server_error_at_close']}" if c["server_error_at_close"] else "")),
    ]  # fmt: skip


def _asgi_rows(a: dict[str, Any], window: float | None) -> list[Row]:
    s = "ASGI process"
    per = a["kib_per_connection"]
    verdict = "n/a" if per is None else ("within" if a["within_target"] else "ABOVE")
    beat = a["cpu_per_keepalive_ms"]
    hb_verdict = (
        "n/a" if beat is None else ("within" if beat <= a["keepalive_target_ms"] else "ABOVE")
    )
    per_s = a["cpu_us_per_connection_s"]
    cores_100k = per_s * 100_000 / 1e6 if per_s is not None else None
    return [
        (s, "RSS before", _mib(a["rss_before_kib"]),
         f"VmRSS of {a['name']} (pid {a['pid']}) after the warm-up, no connection open"),
        (s, "RSS after", _mib(a["rss_after_kib"]),
         "VmRSS at the end of the steady window, every connection open"),
        (s, "KiB per connection", fmt(per, 1, " KiB"),
         f"(after - before) / welcomed; {verdict} the target of {a['target_kib']:g} KiB"),
        (s, "peak RSS", _mib(a["peak_rss_kib"]), "VmHWM: the process's whole life"),
        (s, "RSS in the window", _mib(a["rss_window_max_kib"]),
         f"highest VmRSS sampled each second; lowest {_mib(a['rss_window_min_kib'])}"),
        (s, "idle CPU", fmt(a["idle_cpu_percent"], 1, " %"),
         f"over the {fmt(window, 1, ' s')} window; 100 % = one core"),
        (s, "CPU per keep-alive", fmt(a["cpu_per_keepalive_ms"], 3, " ms"),
         f"idle CPU s in the window / (pings + heartbeats answered in it); {hb_verdict} the "
         f"target of {a['keepalive_target_ms']:g} ms; the whole server (ASGI, workers, beat, "
         f"PostgreSQL, Redis) {fmt(a['server_cpu_per_keepalive_ms'], 3, ' ms')}"),
        (s, "CPU per idle connection", fmt(per_s, 2, " µs/s"),
         f"idle CPU in the window / connections / seconds: {fmt(cores_100k, 2)} cores for "
         "100,000 idle browsers"),
        (s, "CPU while connecting", fmt(a["connect_cpu_percent"], 1, " %"),
         "clients started -> every connection welcomed or failed"),
        (s, "open files limit", fmt(a["open_files_limit"], 0), "RLIMIT_NOFILE of the process"),
    ]  # fmt: skip


def _floor_rows(f: dict[str, Any] | None) -> list[Row]:
    s = "floor"
    if f is None:
        return [(s, "bare endpoint", "n/a", "not measured (--no-floor, or no steady window)")]
    if f["why"]:
        return [(s, "bare endpoint", "n/a", f["why"])]
    return [
        (s, "CPU per keep-alive", fmt(f["cpu_per_keepalive_ms"], 3, " ms"),
         f"{f['app']} under the Procfile's web command, the same clients: "
         f"{f['welcomed']:,} connections, {f['heartbeats_answered']:,} heartbeats and "
         f"{f['pings_answered']:,} pings in {f['window_s']:.1f} s, "
         f"{fmt(f['cpu_percent'], 1, ' %')} CPU"),
        (s, "socialgrid / floor", fmt(f["ratio"], 2, "x"),
         "the ASGI process's CPU per keep-alive above, against the bare endpoint's"),
    ]  # fmt: skip


def _service_rows(services: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for role in ("redis", "postgresql"):
        f = services.get(role)
        if f is None:
            rows.append(("services", f"{role} memory before", "n/a", "not on this machine"))
            rows.append(("services", f"{role} memory after", "n/a", ""))
            continue
        what = (
            "postmaster, server processes and the bench database's backends"
            if role == "postgresql"
            else "the whole server (shared)"
        )
        rows.append(
            ("services", f"{role} memory before", _mib(f["before_kib"]), f"{f['kind']}; {what}")
        )
        rows.append(
            (
                "services",
                f"{role} memory after",
                _mib(f["after_kib"]),
                f"idle CPU {fmt(f['idle_cpu_percent'], 1, ' %')} over the window",
            )
        )
    return rows


def _process_rows(processes: list[dict[str, Any]], window: float | None) -> list[Row]:
    rows = []
    for p in processes:
        many = f", {p['processes']} processes" if p["processes"] > 1 else ""
        detail = (
            f"waited for a CPU {p['wait_percent']:.1f} %; peak RSS "
            f"{fmt(p['peak_rss_mib'], 1, ' MiB')} ({p['rss_kind']}{many})"
        )
        if p["detail"]:
            detail += f"; {p['detail']}"
        rows.append(
            ("processes", f"{p['name']} (pid {p['pid']})", f"{p['cpu_percent']:.1f} % CPU", detail)
        )
    rows.append(
        ("processes", "steady window", fmt(window, 1, " s"), "CPU and wait: 100 % = one core")
    )
    return rows


def table(summary: dict[str, Any]) -> str:
    rows = (
        _parameter_rows(summary["parameters"])
        + _machine_rows(summary["machine"])
        + _connection_rows(summary["connections"])
        + _asgi_rows(summary["asgi"], summary["window_s"])
        + _floor_rows(summary.get("floor"))
        + _service_rows(summary["services"])
        + _process_rows(summary["processes"], summary["window_s"])
        + [("result", "status", summary["status"], summary["why"])]
    )
    title = f"socialgrid idle connections, {summary['started_at']}, {summary['run_dir']}"
    return title + "\n\n" + render_table(rows)


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:
        return client_main(argv[1:])
    args = parse_args(argv)
    args.out = args.out.resolve()
    run_dir = make_run_dir(args.out)
    data = guarded_run(args, run_dir, execute, (DeploymentError, HarnessError))
    if isinstance(data, int):
        return data
    summary = summarise(data)
    save_results(run_dir, summary, table(summary))
    print(f"\nlogs, table.txt and results.json in {run_dir}")
    if summary["status"] != "ok":
        print(f"\nFAILED: {summary['why']}", file=sys.stderr)
        for note in summary["connections"]["notes"]:
            print(f"  {note}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
