"""The replicas a headless volunteer holds: queued, running in the pool, or reported and
waiting for the server's acknowledgement. Knows nothing of sockets; the volunteer feeds it
tasks and sends the reports it produces."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from compute.headless.references import MAX_REASON, Computed, ReferencePool, describe

log = logging.getLogger(__name__)

MAX_CPU_TIME = 31_536_000.0  # the protocol's bound on cpu_time: one year


@dataclass(frozen=True)
class Task:
    replica: int
    lease: str
    app: str
    path: str
    input: Any
    deadline: datetime | None


@dataclass
class Report:
    """A result or error message, kept until the server acknowledges it."""

    replica: int
    kind: str
    text: str
    sent_at: float | None = None


def _deadline(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


class Workload:
    def __init__(
        self,
        workers: int,
        references: dict[str, str],
        *,
        cpu_time_scale: float = 1.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.workers = workers
        self.references = references
        self.cpu_time_scale = cpu_time_scale
        self.on_change = on_change
        self.max_message_bytes = 1024 * 1024 + 4096
        self.tasks: dict[int, Task] = {}
        self.reports: dict[int, Report] = {}
        self._queue: deque[int] = deque()
        self._running: dict[int, tuple[asyncio.Future[Computed], int]] = {}
        # Computations of cancelled replicas: they hold a worker until they return.
        self._abandoned: set[asyncio.Future[Computed]] = set()
        self._pool = ReferencePool(workers)
        self._closed = False

    @property
    def holding(self) -> set[int]:
        """Replicas leased to this host that it works on or has yet to hear back about."""
        return set(self.tasks) | set(self.reports)

    @property
    def busy_workers(self) -> int:
        return len(self._running) + len(self._abandoned)

    def accept(self, task: dict[str, Any]) -> bool:
        """Take on an assigned task; a task no reference can run is reported as an error."""
        try:
            replica, lease, app = int(task["replica"]), str(task["lease"]), task["app"]["name"]
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed task: %.200r", task)
            return False
        if replica in self.tasks or replica in self.reports:
            return False
        path = self.references.get(app)
        if path is None:
            self._report_error(replica, lease, f"no reference for app {app}")
            return True
        deadline = _deadline(task.get("deadline"))
        self.tasks[replica] = Task(replica, lease, app, path, task.get("input"), deadline)
        self._queue.append(replica)
        self._start_ready()
        return True

    def drop(self, replica: int) -> None:
        """Forget a replica; if it is running, the computation finishes unheard."""
        self.tasks.pop(replica, None)
        self.reports.pop(replica, None)
        with contextlib.suppress(ValueError):
            self._queue.remove(replica)
        running = self._running.pop(replica, None)
        if running is not None:
            self._abandoned.add(running[0])

    def acknowledged(self, replica: int) -> Report | None:
        return self.reports.pop(replica, None)

    def unsent(self) -> list[Report]:
        return [r for r in self.reports.values() if r.sent_at is None]

    def close(self) -> None:
        """Stop every worker now; whatever runs is abandoned."""
        self._closed = True
        self._pool.close()

    def _start_ready(self) -> None:
        while self._queue and self.busy_workers < self.workers and not self._closed:
            task = self.tasks[self._queue.popleft()]
            if task.deadline is not None and task.deadline <= datetime.now(UTC):
                log.info("replica %s passed its deadline before it started", task.replica)
                del self.tasks[task.replica]
                continue
            try:
                future, generation = self._pool.submit(task.path, task.input)
            except Exception as e:
                del self.tasks[task.replica]
                self._report_error(task.replica, task.lease, f"cannot start: {describe(e)}")
                continue
            self._running[task.replica] = (future, generation)
            future.add_done_callback(functools.partial(self._finished, task.replica))

    def _finished(self, replica: int, future: asyncio.Future[Computed]) -> None:
        outcome = _outcome(future)
        if future in self._abandoned:
            self._abandoned.discard(future)
        elif not self._closed and self._running.get(replica, (None,))[0] is future:
            _, generation = self._running.pop(replica)
            task = self.tasks.pop(replica)
            if outcome is None:
                # A worker died under this computation, which broke the pool: start afresh.
                self._pool.discard(generation)
                reason = f"the worker process died: {describe(future.exception())}"
                outcome = Computed(False, reason=reason)
            if outcome.ok:
                self._report_result(task, outcome)
            else:
                self._report_error(task.replica, task.lease, outcome.reason)
        if not self._closed:
            self._start_ready()
            self.on_change()

    def _report_result(self, task: Task, outcome: Computed) -> None:
        cpu_time = min(max(outcome.cpu_time * self.cpu_time_scale, 0.0), MAX_CPU_TIME)
        message = {
            "type": "result",
            "replica": task.replica,
            "lease": task.lease,
            "output": outcome.output,
            "cpu_time": cpu_time,
        }
        try:
            # NaN and Infinity are not JSON, whatever Python's json module accepts.
            text = json.dumps(message, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            self._report_error(task.replica, task.lease, f"the output is not JSON: {describe(e)}")
            return
        size = len(text.encode())
        if size > self.max_message_bytes:
            # The server would answer too_large without naming the replica.
            self._report_error(task.replica, task.lease, f"the output is too large ({size} bytes)")
            return
        log.debug("replica %s done in %.3f s of CPU", task.replica, outcome.cpu_time)
        self.reports[task.replica] = Report(task.replica, "result", text)

    def _report_error(self, replica: int, lease: str, reason: str) -> None:
        log.warning("replica %s failed: %s", replica, reason)
        message = {
            "type": "error",
            "replica": replica,
            "lease": lease,
            "reason": reason[:MAX_REASON],
        }
        text = json.dumps(message, separators=(",", ":"))
        self.reports[replica] = Report(replica, "error", text)


def _outcome(future: asyncio.Future[Computed]) -> Computed | None:
    """The computation's result; None when the pool broke under it."""
    if future.cancelled():
        return Computed(False, reason="the computation was cancelled")
    error = future.exception()
    if isinstance(error, BrokenProcessPool):
        return None
    if error is not None:
        return Computed(False, reason=describe(error))
    return future.result()
