"""Serve the whole platform from one command.

Embedded mode (no REDIS_URL): one process serves HTTP and WebSockets and runs the periodic
sweeps in a thread. With REDIS_URL, ``--with-worker`` also starts a Celery worker with beat
as a child process; without it, run ``celery -A socialgrid worker`` and
``celery -A socialgrid beat`` yourself. Ctrl-C stops everything this command started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the platform (HTTP, WebSockets, periodic sweeps) on one port."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--with-worker",
            action="store_true",
            help="With REDIS_URL: also start a Celery worker with embedded beat.",
        )

    def handle(self, *args, host: str, port: int, with_worker: bool, **options) -> None:
        import uvicorn

        from compute.embedded_beat import EmbeddedBeat

        beat = None
        worker = None
        if settings.CELERY_TASK_ALWAYS_EAGER:
            beat = EmbeddedBeat()
            beat.start()
            mode = "embedded: SQLite, in-memory channel layer, sweeps in this process"
        elif with_worker:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "socialgrid",
                    "worker",
                    "-B",
                    "--loglevel=INFO",
                    "-Q",
                    settings.CELERY_TASK_DEFAULT_QUEUE,
                ],
            )
            mode = f"services: worker and beat started (pid {worker.pid})"
        else:
            mode = "services: run the Celery worker and beat separately"
        self.stdout.write(f"socialgrid on http://{host}:{port}/ ({mode}); Ctrl-C stops it")
        config = uvicorn.Config(
            "socialgrid.asgi:application",
            host=host,
            port=port,
            lifespan="off",
            timeout_graceful_shutdown=5,
            # As the Procfile's web command: every socket's pings from one timer.
            ws="socialgrid.keepalive:KeepaliveProtocol",
            ws_ping_interval=settings.PROTOCOL["PING_SECONDS"],
            ws_ping_timeout=settings.PROTOCOL["PING_SECONDS"],
            log_level="info",
        )
        try:
            uvicorn.Server(config).run()
        except KeyboardInterrupt:
            # uvicorn re-raises the Ctrl-C it already handled; the shutdown was clean.
            pass
        finally:
            if beat:
                beat.stop()
            if worker and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
