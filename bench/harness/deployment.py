"""A real deployment on this machine, started and stopped by the bench.

A fresh PostgreSQL database (dropped and created), ``manage.py migrate``, a flushed Redis
database, then ``asgi`` web processes on ports of their own, ``workers`` Celery workers
sharing the run's queue, and one Celery beat, each started with its command from the
Procfile (socialgrid/procfile.py), exactly as docs/deploy.md tells an operator to run it;
only the environment differs between runs. Every process is a subprocess in its own
session (Ctrl-C reaches only the bench, which stops them in order) with its log in the run
directory. ``Deployment`` is a context manager: leaving it stops everything, SIGTERM first
and SIGKILL after a timeout, whatever happened. The processes it started are also listed in
``<out>/.running.json`` until they are stopped, so a bench killed outright has its leftovers
stopped by the next run (only processes whose pid and start time match the list).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.harness import metrics
from bench.harness.services import TargetRefused, check_targets, flush_redis, reset_database
from socialgrid import procfile

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# Inherited settings that would change what is measured, and the variables the Procfile's
# commands read (each process gets its own); a run is defined by its options.
SCRUBBED = (
    "DATABASE_URL", "REDIS_URL", "CACHE_URL", "PREFETCH_PER_CORE",
    "HOST", "PORT", "WORKER", "BEAT_SCHEDULE",
)  # fmt: skip
SCRUBBED_PREFIXES = (
    "SWEEP_", "PROTOCOL_", "FEEDER_", "SOCIALGRID_", "DB_", "CELERY_", "DISPATCH_", "ASGI_",
    "CHANNEL_LAYER_",
)  # fmt: skip
# The bench's roles and the Procfile's process types they run.
PROCESS_TYPES = {"asgi": "web", "worker": "worker", "beat": "beat"}
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0


class DeploymentError(RuntimeError):
    """A process would not start, or died: the message says which and where its log is."""


@dataclass
class Config:
    run_dir: Path
    out_dir: Path
    database_url: str
    redis_url: str
    asgi: int = 1
    workers: int = 1
    queue: str = "sg-bench"
    prefetch: int = 2
    sweeps: dict[str, float] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    port_base: int = 0


@dataclass
class Managed:
    name: str
    role: str
    popen: subprocess.Popen
    log: Path
    stream: IO[bytes]
    port: int | None = None
    argv: list[str] = field(default_factory=list)
    # The process's own environment on top of the deployment's (PORT, WORKER ...).
    variables: dict[str, str] = field(default_factory=dict)
    process_type: str | None = None  # the Procfile's, for the processes started from it

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    def __init__(self, config: Config) -> None:
        try:
            check_targets(config.database_url, config.redis_url)
        except TargetRefused as e:
            raise DeploymentError(str(e)) from e
        self.config = config
        self.processes: list[Managed] = []
        self.started: list[int] = []  # every pid it ever started, stopped or not
        self.ports: list[int] = []
        self._registry = config.out_dir / ".running.json"
        self._env = self._environment()

    def __enter__(self) -> Deployment:
        stop_leftovers(self._registry)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the environment ------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What every process gets: this environment without the settings a run defines,
        then the run's own."""
        return dict(self._env)

    def _environment(self) -> dict[str, str]:
        cfg = self.config
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in SCRUBBED and not k.startswith(SCRUBBED_PREFIXES)
        }
        env.update(
            DJANGO_SETTINGS_MODULE="socialgrid.settings",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
            DATABASE_URL=cfg.database_url,
            REDIS_URL=cfg.redis_url,
            CACHE_URL=cfg.redis_url,
            CELERY_QUEUE=cfg.queue,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PREFETCH_PER_CORE=str(cfg.prefetch),
        )
        for name, seconds in cfg.sweeps.items():
            env[f"SWEEP_{name.upper()}_SECONDS"] = str(seconds)
        env.update(cfg.settings)
        return env

    # --- preparing the services -------------------------------------------------------------

    def prepare(self) -> None:
        """A clean state: drop and create the database, migrate it, flush the Redis db."""
        reset_database(self.config.database_url)
        log = self.config.run_dir / "migrate.log"
        with log.open("wb") as stream:
            done = subprocess.run(
                [PYTHON, "manage.py", "migrate", "--noinput"],
                cwd=ROOT,
                env=self.env(),
                stdout=stream,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if done.returncode != 0:
            raise DeploymentError(f"manage.py migrate failed; see {log}")
        flush_redis(self.config.redis_url)

    # --- processes --------------------------------------------------------------------------

    def spawn(
        self,
        name: str,
        role: str,
        argv: Sequence[str],
        *,
        port: int | None = None,
        variables: dict[str, str] | None = None,
        process_type: str | None = None,
    ) -> Managed:
        log = self.config.run_dir / f"{name}.log"
        stream = log.open("wb")
        variables = dict(variables or {})
        popen = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=procfile.environment(self.env(), **variables),
            stdout=stream,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        managed = Managed(name, role, popen, log, stream, port, list(argv), variables, process_type)
        self.processes.append(managed)
        self.started.append(popen.pid)
        self._save_registry()
        return managed

    def spawn_procfile(
        self, name: str, role: str, *, port: int | None = None, **variables: object
    ) -> Managed:
        """One process of the Procfile type that ``role`` runs, with its own variables."""
        process_type = PROCESS_TYPES[role]
        own = {k: str(v) for k, v in variables.items()}
        if port is not None:
            own.update(HOST="127.0.0.1", PORT=str(port))
        return self.spawn(
            name,
            role,
            procfile.argv(process_type),
            port=port,
            variables=own,
            process_type=process_type,
        )

    def respawn(self, p: Managed, name: str) -> Managed:
        """What a supervisor does: the same command and environment again, under ``name``."""
        return self.spawn(
            name, p.role, p.argv, port=p.port, variables=p.variables, process_type=p.process_type
        )

    def start(self) -> None:
        cfg = self.config
        for i in range(cfg.asgi):
            port = cfg.port_base + i if cfg.port_base else free_port()
            self.ports.append(port)
            self.spawn_procfile(f"asgi-{i + 1}", "asgi", port=port)
        for i in range(cfg.workers):
            self.spawn_procfile(f"worker-{i + 1}", "worker", WORKER=i + 1)
        self.spawn_procfile("beat", "beat", BEAT_SCHEDULE=cfg.run_dir / "beat-schedule")
        deadline = time.monotonic() + READY_TIMEOUT
        for p in self.processes:
            self.wait_ready(p, deadline)

    def wait_ready(self, p: Managed, deadline: float | None = None) -> None:
        """Until ``p`` answers (an ASGI process its health check, Celery its log line)."""
        deadline = deadline or time.monotonic() + READY_TIMEOUT
        while True:
            if p.popen.poll() is not None:
                raise DeploymentError(
                    f"{p.name} exited with code {p.popen.returncode} while starting; "
                    f"{p.log}:\n{p.tail()}"
                )
            if self._answers(p):
                return
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"{p.name} did not become ready in {READY_TIMEOUT:.0f} s; {p.log}:\n{p.tail()}"
                )
            time.sleep(0.2)

    @staticmethod
    def _answers(p: Managed) -> bool:
        if p.port is not None:
            try:
                url = f"http://127.0.0.1:{p.port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False
        text = p.log.read_text(errors="replace")
        line = {"worker": "ready.", "beat": "beat: Starting...", "redis": "Ready to accept"}
        return line.get(p.role, "") in text

    def check_alive(self, roles: Sequence[str] = ("asgi", "worker", "beat")) -> None:
        for p in self.processes:
            if p.role in roles and p.popen.poll() is not None:
                raise DeploymentError(
                    f"{p.name} died (exit code {p.popen.returncode}); {p.log}:\n{p.tail()}"
                )

    def watched(self) -> list[metrics.Watched]:
        out = []
        for p in self.processes:
            parts = [f"Procfile {p.process_type}"] if p.process_type else []
            parts += [f"{k}={v}" for k, v in p.variables.items() if k in ("PORT", "WORKER")]
            out.append(metrics.Watched(p.name, p.role, p.pid, detail=", ".join(parts)))
        return out

    def stop(self, roles: Sequence[str] | None = None, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL to the process group of whatever is still there."""
        chosen = [p for p in self.processes if roles is None or p.role in roles]
        for p in chosen:
            if p.popen.poll() is None:
                _signal(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in chosen:
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{p.name} ignored SIGTERM for {timeout:.0f} s; killing it", file=sys.stderr)
            # The group too: a prefork worker's children outlive a killed parent.
            _signal(-p.pid, signal.SIGKILL)
            if p.popen.poll() is None:
                p.popen.wait(timeout=5)
            p.stream.close()
        self.processes = [p for p in self.processes if p not in chosen]
        self._save_registry()

    def kill(self, p: Managed) -> None:
        """SIGKILL, as a crash would: no shutdown handlers run, nothing is acknowledged."""
        _signal(-p.pid, signal.SIGKILL)
        p.popen.wait(timeout=10)
        p.stream.close()
        self.processes = [q for q in self.processes if q is not p]
        self._save_registry()

    def _save_registry(self) -> None:
        entries = [
            {"pid": p.pid, "start": metrics.start_ticks(p.pid), "name": p.name}
            for p in self.processes
        ]
        self._registry.write_text(json.dumps(entries))


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        if pid < 0:
            os.killpg(-pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_leftovers(registry: Path) -> None:
    """Kill what a bench killed outright left running (same pid and start time only)."""
    try:
        entries = json.loads(registry.read_text())
    except (OSError, ValueError):
        return
    for entry in entries:
        pid = int(entry["pid"])
        if entry.get("start") is not None and metrics.start_ticks(pid) == entry["start"]:
            print(f"stopping {entry['name']} (pid {pid}) left by an earlier run", file=sys.stderr)
            _signal(-pid, signal.SIGKILL)
    registry.unlink(missing_ok=True)
