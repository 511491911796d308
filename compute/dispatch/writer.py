"""Group commit: one writer per ASGI process takes the ops of all its sockets and writes
them together.

A socket hands its op to the writer and waits for the answer. Ops handed over in one turn of
the event loop, or while a flush is running, go out together in the next flush: one
transaction (:func:`compute.dispatch.flush.apply`) on the writer's own thread and database
connection, so a busy process pays a few statements and one hop between threads for many
messages instead of a transaction and a hop for each. An idle process flushes at once. No
answer is given before its flush has committed.

A flush that fails answers ``server_error`` for exactly the ops it held and changes nothing
for any other flush. When the database or the connection failed (a restart, a terminated
connection), the connection is closed and the next flush opens a new one; when the
database refused something in the flush, the ops are tried again in halves, so one op
cannot cost its neighbours their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import OperationalError, connection

from channels.db import database_sync_to_async

from compute import dbthreads
from compute.dispatch import flush
from compute.dispatch.flush import Answer
from compute.dispatch.ops import FAILED, Op, Touch

log = logging.getLogger(__name__)

# Last-seen times wait this long for others to write with.
TOUCH_SECONDS = 5.0

_executor: dbthreads.Threads | None = None
_executor_lock = threading.Lock()
_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Writer] = weakref.WeakKeyDictionary()


def executor() -> dbthreads.Threads:
    """The process's writer thread (one, holding one database connection; a daemon, so a
    flush blocked in the database never holds up the process's exit: its transaction, never
    committed, is rolled back, and its ops were never answered)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = dbthreads.Threads(1, "sg-writer")
    return _executor


def get() -> Writer:
    """The writer of the running event loop."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = Writer(
            loop, settings.DISPATCH["MAX_BATCH"], settings.DISPATCH["LINGER_SECONDS"]
        )
    return writer


class Writer:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_batch: int, linger: float = 0.0
    ) -> None:
        self.loop = loop
        self.max_batch = max_batch
        self.linger = linger
        self.pending: list[tuple[Op, asyncio.Future]] = []
        self.busy = False
        self.scheduled = False
        self.flushes = 0
        self.ops = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.touched: set[int] = set()
        self.touch_timer: asyncio.TimerHandle | None = None

    def submit(self, op: Op) -> asyncio.Future[Answer]:
        """Queue ``op`` for the next flush; the future holds its answer once committed."""
        future = self.loop.create_future()
        self.pending.append((op, future))
        self.idle.clear()
        if not self.busy and not self.scheduled:
            # Not at once: ops handed over in this turn of the loop, or within the linger,
            # join the same flush.
            self.scheduled = True
            if self.linger > 0:
                self.loop.call_later(self.linger, self._next)
            else:
                self.loop.call_soon(self._next)
        return future

    def touch(self, host_id: int) -> None:
        """Note that a host was seen; the hosts noted within TOUCH_SECONDS are written
        together, as one op."""
        self.touched.add(host_id)
        if self.touch_timer is None:
            self.touch_timer = self.loop.call_later(TOUCH_SECONDS, self._touch)

    def _touch(self) -> None:
        self.touch_timer = None
        if self.touched:
            host_ids, self.touched = tuple(sorted(self.touched)), set()
            self.submit(Touch(host_ids))

    async def settled(self) -> None:
        """Until every op handed over so far has been flushed, with the work its flush
        queued for after the commit (which runs at once where Celery runs in-process)."""
        await self.idle.wait()

    def _next(self) -> None:
        self.scheduled = False
        if self.busy or not self.pending:
            return
        batch = self.pending[: self.max_batch]
        del self.pending[: self.max_batch]
        self.busy = True
        self.flushes += 1
        self.ops += len(batch)
        ops = [op for op, _ in batch]

        def committed(answers: list[Answer]) -> None:
            # On the flushing thread, the moment the transaction committed.
            self._from_thread(self._answer, batch, answers)

        if dbthreads.pool_size() > 0:
            done = executor().submit(run, ops, committed)
            done.add_done_callback(lambda f: self._from_thread(self._finished, batch, f.result()))
        else:
            # SQLite: Channels' database thread, which every other socket call uses too: one
            # writer at a time, and an in-memory test database seen by one connection.
            task = self.loop.create_task(database_sync_to_async(run)(ops, committed))
            task.add_done_callback(lambda t: self._finished(batch, t.result()))

    def _from_thread(self, callback: Callable[..., None], *args: object) -> None:
        # A loop that has closed (the server is shutting down) has nobody waiting.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(callback, *args)

    def _answer(self, batch: list[tuple[Op, asyncio.Future]], answers: list[Answer]) -> None:
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    def _finished(self, batch: list[tuple[Op, asyncio.Future]], answers: list[Answer]) -> None:
        """The flush's thread is done (its after-commit work too): answer what its commit
        did not (a failed flush), and start the next."""
        self._answer(batch, answers)
        self.busy = False
        if self.pending:
            self._next()
        else:
            self.idle.set()


def run(ops: Sequence[Op], committed: Callable[[list[Answer]], None] | None = None) -> list[Answer]:
    """One flush on the flushing thread; never raises."""
    try:
        return flush.apply(ops, committed=committed)
    except Exception as error:
        return _after_failure(ops, error)
    finally:
        _tidy_connection()


def _after_failure(ops: Sequence[Op], error: Exception) -> list[Answer]:
    if isinstance(error, OperationalError):
        # The database or the connection failed (a restart, a terminated connection, a
        # conflict that retries did not resolve), not one op: start over on a new one.
        log.warning("a flush of %d ops failed: %s", len(ops), error)
        connection.close()
        return [FAILED] * len(ops)
    if len(ops) > 1:
        # Something in the flush was refused: try the halves, so only that op fails.
        half = len(ops) // 2
        return run(ops[:half]) + run(ops[half:])
    log.error("a %s op failed", type(ops[0]).__name__, exc_info=error)
    return [FAILED]


def _tidy_connection() -> None:
    # Not close_old_connections(): that re-arms Django's health check, a round trip per
    # flush. A connection that saw an error and no longer answers, or is past its age, is
    # closed; the next flush opens a new one.
    expired = connection.close_at is not None and time.monotonic() >= connection.close_at
    if connection.errors_occurred or expired:
        connection.close_if_unusable_or_obsolete()
