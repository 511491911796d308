"""Celery beat's schedule, run by a thread inside the web process.

In the embedded mode there is no broker, no worker and no beat process: Celery runs tasks
in-process, and this thread triggers the periodic sweeps on the same schedule that beat
uses in production (``CELERY_BEAT_SCHEDULE``), so both modes run the same code.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections

from socialgrid.celery import app as celery_app

log = logging.getLogger(__name__)


class EmbeddedBeat(threading.Thread):
    def __init__(self, schedule: dict | None = None) -> None:
        super().__init__(name="embedded-beat", daemon=True)
        self.schedule = schedule if schedule is not None else settings.CELERY_BEAT_SCHEDULE
        self.stopping = threading.Event()
        self.runs: dict[str, int] = dict.fromkeys(self.schedule, 0)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        due = {name: time.monotonic() for name in self.schedule}
        while not self.stopping.is_set():
            now = time.monotonic()
            for name, entry in self.schedule.items():
                if due[name] <= now:
                    self._run_one(name, entry["task"])
                    due[name] = time.monotonic() + float(entry["schedule"])
            self.stopping.wait(max(0.05, min(due.values()) - time.monotonic()))

    def _run_one(self, name: str, task_name: str) -> None:
        close_old_connections()
        try:
            celery_app.tasks[task_name].apply(throw=True)
            self.runs[name] += 1
        except Exception:
            log.exception("periodic sweep %s failed", name)
        finally:
            close_old_connections()
