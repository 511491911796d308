"""The ceiling: what the pieces under the dispatch path can do at most on this machine,
measured in the same run before the workload starts.

- **WebSocket messages/s of a bare uvicorn endpoint.** :func:`application` is a minimal ASGI
  app (no Django, no Channels): it accepts a socket and answers every text frame with one
  text frame of ``CEILING_REPLY_BYTES``. It is started with the Procfile's web command, the
  application being the only thing changed (socialgrid/procfile.py), and driven by client
  processes (this module run as ``python -m bench.harness.ceiling client``) of the same kind
  as the simulated volunteers: asyncio, the ``websockets`` library, uvloop, no compression.
  Each connection sends a frame of the size of a result and waits for the answer, of the
  size of its ack carrying a task, again and again; answers received inside the window count.
- **PostgreSQL rows/s of the batched statements the path uses.** This module run as
  ``python -m bench.harness.ceiling database`` on a copy of the bench database (created from
  it as a template, dropped afterwards, so the run's database is untouched) creates work
  units with one replica each leased to one host, and records a result for each through the
  dispatch path's own flush (``compute.dispatch.flush.apply``) in batches, timing the flushes
  only. One result per work unit of quorum 2 asks for no validation: the figure is that of
  recording results.

Per result the path needs about one message round trip and one such row, so the run's
results/s divided by each figure is how close the whole platform comes to its pieces.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

APP = "bench.harness.ceiling:application"
SEND_BYTES = 150  # about a result message
REPLY_BYTES = 300  # about the ack of a result that carries the next task
MAX_CONNECTIONS = 256
CONNECT_SECONDS = 3.0  # client processes start and connect before the window opens
WARMUP_BATCHES = 1  # not timed: the statements are prepared on the first flush


def _text(size: int) -> str:
    """A JSON text of exactly ``size`` bytes (at least 12)."""
    head = '{"pad":"'
    return head + "x" * max(0, size - len(head) - 2) + '"}'


# === The bare endpoint ========================================================================


async def serve_bare(
    scope: dict[str, Any], receive: Any, send: Any, answer: Callable[[str], str]
) -> None:
    """A bare endpoint (no Django, no Channels): the lifespan, 200 to any HTTP request (the
    harness's readiness check), and sockets whose every text frame gets ``answer(text)``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": answer(message["text"])})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every text frame with a text frame of ``CEILING_REPLY_BYTES``."""
    reply = _text(int(os.environ.get("CEILING_REPLY_BYTES", REPLY_BYTES)))
    await serve_bare(scope, receive, send, lambda _: reply)


def ws_implementation(web_command: str) -> str:
    """The ``--ws`` option of a web command and the protocol class uvicorn picks for it
    (``auto`` resolves to one of the others; an import string names its class)."""
    words = shlex.split(web_command)
    option = "auto"
    for i, word in enumerate(words):
        if word == "--ws" and i + 1 < len(words):
            option = words[i + 1]
        elif word.startswith("--ws="):
            option = word.split("=", 1)[1]
    try:
        from uvicorn.config import WS_PROTOCOLS
        from uvicorn.importer import import_from_string

        chosen = import_from_string(WS_PROTOCOLS.get(option, option))
        return f"{option} ({chosen.__name__})"
    except Exception:
        return option


# === The WebSocket client processes ===========================================================


async def _drive(url: str, start_at: float, stop_at: float, send_bytes: int, out: dict) -> None:
    from websockets.asyncio.client import connect

    from bench.harness.volunteers import USER_AGENT, origin_of

    text = _text(send_bytes)
    async with connect(
        url,
        origin=origin_of(url),
        user_agent_header=USER_AGENT,
        proxy=None,
        compression=None,
        open_timeout=30,
        close_timeout=2,
    ) as ws:
        out["connected"] += 1
        while True:
            await ws.send(text)
            await ws.recv()
            now = time.time()
            if now >= stop_at:
                return
            if now >= start_at:
                out["answered"] += 1


async def _clients(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"connections": args.connections, "connected": 0, "answered": 0}
    tasks = [
        asyncio.create_task(_drive(args.url, args.start_at, args.stop_at, args.send_bytes, out))
        for _ in range(args.connections)
    ]
    done, _ = await asyncio.wait(tasks)
    errors = [repr(t.exception())[:200] for t in done if t.exception() is not None]
    out["errors"] = len(errors)
    out["error"] = errors[0] if errors else None
    return out


def client_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.ceiling client")
    p.add_argument("--url", required=True)
    p.add_argument("--connections", type=int, required=True)
    p.add_argument("--send-bytes", type=int, default=SEND_BYTES)
    p.add_argument("--start-at", type=float, required=True, help="epoch seconds")
    p.add_argument("--stop-at", type=float, required=True, help="epoch seconds")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        import uvloop  # as the volunteers: the clients' CPU stays small
    except ImportError:
        uvloop = None
    data = (uvloop.run if uvloop else asyncio.run)(_clients(args))
    usage = os.times()
    data["cpu_s"] = usage.user + usage.system
    args.out.write_text(json.dumps(data))
    return 0


def with_ws(argv: list[str], ws: str) -> list[str]:
    """A ``sh -c`` web command with its ``--ws`` option set to ``ws`` (added if absent)."""
    words = shlex.split(argv[-1])
    for i, word in enumerate(words):
        if word == "--ws":
            words[i + 1] = ws
            break
        if word.startswith("--ws="):
            words[i] = f"--ws={ws}"
            break
    else:
        words.append(f"--ws={ws}")
    # Words that held shell expansions go back double-quoted, so the shell still expands them.
    quoted = [f'"{w}"' if "$" in w else shlex.quote(w) for w in words]
    return [*argv[:-1], " ".join(quoted)]


def measure_websocket(
    dep: Any, *, connections: int, processes: int, seconds: float, ws: str | None = None
) -> dict[str, Any]:
    """The bare endpoint on one process, driven by ``processes`` client processes sharing
    ``connections``; the deployment ``dep`` starts and stops them (logs in its run
    directory). ``ws`` replaces the web command's ``--ws`` (to compare implementations)."""
    from bench.harness import metrics
    from bench.harness.deployment import PYTHON, free_port
    from socialgrid import procfile

    run_dir = dep.config.run_dir
    port = free_port()
    argv = procfile.web_argv_for(APP)
    if ws is not None:
        argv = with_ws(argv, ws)
    server = dep.spawn(
        "ceiling-web",
        "ceiling",
        argv,
        port=port,
        variables={"HOST": "127.0.0.1", "PORT": str(port), "CEILING_REPLY_BYTES": str(REPLY_BYTES)},
        process_type="web",
    )
    try:
        dep.wait_ready(server)
        start_at = time.time() + CONNECT_SECONDS
        stop_at = start_at + seconds
        clients = []
        for i in range(processes):
            share = (i + 1) * connections // processes - i * connections // processes
            out = run_dir / f"ceiling-clients-{i + 1}.json"
            client = [PYTHON, "-m", "bench.harness.ceiling", "client",
                    "--url", f"ws://127.0.0.1:{port}/", "--connections", str(share),
                    "--send-bytes", str(SEND_BYTES), "--start-at", repr(start_at),
                    "--stop-at", repr(stop_at), "--out", str(out)]  # fmt: skip
            clients.append((dep.spawn(f"ceiling-clients-{i + 1}", "ceiling-clients", client), out))
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = metrics.cpu_seconds(server.pid)
        time.sleep(max(0.0, stop_at - time.time()))
        cpu_after = metrics.cpu_seconds(server.pid)
        wall = seconds
        tallies = []
        for managed, out in clients:
            try:
                managed.popen.wait(timeout=30)
                tallies.append(json.loads(out.read_text()))
            except Exception as e:
                tallies.append({"connected": 0, "answered": 0, "errors": 1, "error": repr(e)})
    finally:
        dep.stop(roles=["ceiling", "ceiling-clients"])
    answered = sum(t["answered"] for t in tallies)
    server_cpu = (
        cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    )
    errors = [t.get("error") for t in tallies if t.get("errors")]
    return {
        "app": APP,
        "ws": ws_implementation(argv[-1]),
        "connections": connections,
        "connected": sum(t["connected"] for t in tallies),
        "client_processes": processes,
        "send_bytes": SEND_BYTES,
        "reply_bytes": REPLY_BYTES,
        "window_s": wall,
        "answered": answered,
        "messages_per_second": answered / wall if wall > 0 else None,
        "server_cpu_s": server_cpu,
        "server_cpu_percent": 100.0 * server_cpu / wall if server_cpu is not None else None,
        "server_cpu_per_message_us": (
            1e6 * server_cpu / answered if server_cpu is not None and answered else None
        ),
        # What one process would answer with a core of its own.
        "messages_per_cpu_second": answered / server_cpu if server_cpu else None,
        "client_cpu_s": sum(t.get("cpu_s", 0.0) for t in tallies),
        "client_errors": len(errors),
        "client_error": errors[0] if errors else None,
    }


# === The database =============================================================================


def database_main(argv: list[str]) -> int:
    """Run with DJANGO_SETTINGS_MODULE and DATABASE_URL naming the scratch database."""
    p = argparse.ArgumentParser(prog="python -m bench.harness.ceiling database")
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    import django

    django.setup()
    args.out.write_text(json.dumps(record_results(args.rows, args.batch)))
    return 0


def record_results(rows: int, batch: int) -> dict[str, Any]:
    """``rows`` results recorded through the dispatch path's flush, ``batch`` per flush, on
    this process's database; the flushes alone are timed (after ``WARMUP_BATCHES``)."""
    import secrets
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from bench.harness import metrics
    from compute import submission
    from compute.dispatch import flush
    from compute.dispatch.ops import HostRef, ReportResult
    from compute.models import App, AppVersion, Host, Project, Replica
    from compute.states import REPLICA_TRANSITIONS

    total = rows + WARMUP_BATCHES * batch
    owner = get_user_model().objects.create_user(username="ceiling-owner", password=None)
    project = Project.objects.create(
        slug="ceiling", name="Ceiling", owner=owner, min_quorum=2, target_nresults=2
    )
    app = App.objects.create(
        project=project, name="ceiling", title="Ceiling", reference_path=_reference()
    )
    AppVersion.objects.create(app=app, version=1, kernel="export function run() {}\n")
    created = submission.create_batch(
        project, app, [{"x": i} for i in range(total)], name="ceiling"
    )
    host = Host.objects.create(name="ceiling", cores=1, benchmark_fpops=1e9)
    ref = HostRef.of(host, [project.id])
    token = secrets.token_hex(16)
    now = timezone.now()
    (leased_state, _) = REPLICA_TRANSITIONS["report_success"]
    # One replica of each work unit, leased to the host as a lease would leave it.
    chosen = list(
        Replica.objects.filter(workunit__batch=created, ordinal=0)
        .order_by("id")
        .values_list("id", "workunit__input")
    )
    Replica.objects.filter(id__in=[r for r, _ in chosen]).update(
        server_state=leased_state[0],
        outcome=leased_state[1],
        validate_state=leased_state[2],
        host=host,
        lease_token=token,
        sent_at=now,
        deadline=now + timedelta(days=1),
    )
    ops = [
        ReportResult(ref, replica, token, json.dumps({"y": data["x"] * 2}), 0.0)
        for replica, data in chosen
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    timed = accepted = 0
    wall = client_cpu = 0.0
    pg_cpu: float | None = 0.0
    for n, first in enumerate(range(0, len(ops), batch)):
        chunk = ops[first : first + batch]
        pg_before = metrics.cpu_seconds(backend)
        cpu_before, started = time.process_time(), time.perf_counter()
        answers = flush.apply(chunk)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        pg_after = metrics.cpu_seconds(backend)
        accepted += sum(1 for a in answers if getattr(a, "accepted", False))
        if n < WARMUP_BATCHES:
            continue
        timed += len(chunk)
        wall += elapsed
        client_cpu += cpu
        if pg_cpu is not None and pg_before is not None and pg_after is not None:
            pg_cpu += pg_after - pg_before
        else:
            pg_cpu = None  # the server is not on this machine, or not readable
    return {
        "rows": timed,
        "batch": batch,
        "batches": -(-timed // batch),
        "accepted": accepted,
        "created": total,
        "seconds": wall,
        "rows_per_second": timed / wall if wall > 0 else None,
        "client_cpu_per_row_us": 1e6 * client_cpu / timed if timed else None,
        "postgresql_cpu_per_row_us": 1e6 * pg_cpu / timed if timed and pg_cpu is not None else None,
    }


def _reference() -> str:
    from bench.harness.workload import REFERENCE

    return REFERENCE


def measure_database(dep: Any, *, rows: int, batch: int) -> dict[str, Any]:
    """:func:`record_results` in a subprocess on a copy of the bench database (its template:
    the same schema and data), which is dropped afterwards. Call while nothing is connected
    to the bench database (PostgreSQL copies only a database nobody uses)."""
    from urllib.parse import urlsplit

    from bench.harness import services
    from bench.harness.deployment import PYTHON, DeploymentError

    source = dep.config.database_url
    scratch_name = services.database_name(source) + "_ceiling"
    scratch = urlsplit(source)._replace(path="/" + scratch_name).geturl()
    services.copy_database(source, scratch)
    out = dep.config.run_dir / "ceiling-database.json"
    try:
        env = dep.env()
        env["DATABASE_URL"] = scratch
        # Nothing of the scratch run may reach the run's Redis (its broker queue, its flags).
        for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
            env.pop(name, None)
        log = dep.config.run_dir / "ceiling-database.log"
        with log.open("wb") as stream:
            import subprocess

            done = subprocess.run(
                [PYTHON, "-m", "bench.harness.ceiling", "database",
                 "--rows", str(rows), "--batch", str(batch), "--out", str(out)],
                cwd=Path(__file__).resolve().parents[2],
                env=env,
                stdout=stream,
                stderr=subprocess.STDOUT,
                timeout=600,
            )  # fmt: skip
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise DeploymentError(f"the database ceiling failed; {log}:\n{tail}")
        return {**json.loads(out.read_text()), "database": scratch_name}
    finally:
        services.drop_database(scratch)


def compare_main(argv: list[str]) -> int:
    """The bare endpoint alone, under several ``--ws`` implementations in turn (A B A B ...,
    so that a change in the machine's load hits each alike)."""
    p = argparse.ArgumentParser(prog="python -m bench.harness.ceiling compare")
    p.add_argument("--ws", action="append", required=True, help="a uvicorn --ws value")
    p.add_argument("--connections", type=int, default=200)
    p.add_argument("--processes", type=int, default=2, help="client processes")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "out")
    args = p.parse_args(argv)
    from datetime import datetime

    from bench.harness import metrics
    from bench.harness.deployment import Config, Deployment

    run_dir = args.out.resolve() / datetime.now().strftime("ceiling-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    # Only the deployment's process handling is used (logs, stopping, leftovers): no service
    # is touched, so the URLs are never connected to.
    config = Config(
        run_dir=run_dir,
        out_dir=args.out.resolve(),
        database_url="postgres://127.0.0.1/sg_bench_unused",
        redis_url="redis://127.0.0.1/3",
    )
    results: dict[str, list[dict[str, Any]]] = {ws: [] for ws in args.ws}
    with Deployment(config) as dep:
        for _ in range(args.rounds):
            for ws in args.ws:
                results[ws].append(
                    measure_websocket(
                        dep,
                        connections=args.connections,
                        processes=args.processes,
                        seconds=args.seconds,
                        ws=ws,
                    )
                )
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"load average {metrics.load_average()}; {args.connections} connections, "
          f"{args.processes} client processes, {args.seconds:g} s per measurement")  # fmt: skip
    for runs in results.values():
        rates = ", ".join(f"{r['messages_per_second']:,.0f}" for r in runs)
        per_core = ", ".join(f"{r['messages_per_cpu_second']:,.0f}" for r in runs)
        cpu = ", ".join(f"{r['server_cpu_per_message_us']:.1f}" for r in runs)
        print(f"--ws {runs[0]['ws']}: messages/s {rates}; per core {per_core}; us/message {cpu}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:
        return client_main(argv[1:])
    if argv[:1] == ["database"]:
        return database_main(argv[1:])
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    print("usage: python -m bench.harness.ceiling client|database|compare ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
