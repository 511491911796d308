"""Database calls from the volunteer sockets outside the dispatch path (a session's hello,
which keeps the ORM), on a pool of threads with a connection each. Everything else a socket
asks of the database goes through the process's writer (:mod:`compute.dispatch.writer`).

Channels' ``database_sync_to_async`` runs every call on one thread per process (asgiref's
thread-sensitive mode), so one ASGI process would open one session at a time: in a
reconnect storm, every volunteer of the process would wait behind the others' round trips.
On PostgreSQL, calls here go to ``ASGI_DB_THREADS`` threads, each holding its own
persistent connection; the domain functions own their transactions and lock what they
change, so they may run side by side.

Connections are kept between calls without Django's per-request health check (a
``SELECT 1`` round trip before every call): a call that meets a dropped connection fails
with the database's error, the connection is then closed, and the next call on that thread
reconnects. Connections past ``CONN_MAX_AGE`` are closed after the call that finds them so.

SQLite (embedded mode and the unit tests) keeps Channels' single thread: SQLite allows one
writer at a time, and an in-memory test database is private to its connection.

The threads here and the dispatch writer's are :class:`Threads`: daemon threads, which the
process does not wait for when it exits, and whose callers stop waiting when they are
cancelled. A stop therefore never waits on a database call: a call still running when the
process exits ends with it, and its transaction, never committed, is rolled back by the
database when the connection closes. Whatever was answered had committed first.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import connection

from channels.db import database_sync_to_async

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executor: Threads | None = None


class Threads(Executor):
    """A fixed number of daemon threads taking calls from one queue.

    Unlike a ``ThreadPoolExecutor``, whose threads the interpreter joins before it exits,
    these never hold up the exit of the process: a call blocked in the database (a lock
    held elsewhere, a server that stopped answering) is abandoned with the process.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Future, Callable, tuple, dict] | None] = (
            queue.SimpleQueue()
        )
        self._closed = False
        for number in range(workers):
            threading.Thread(target=self._work, name=f"{name}_{number}", daemon=True).start()
        self._workers = workers

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._closed:
            raise RuntimeError("cannot schedule new calls after shutdown")
        future: Future[T] = Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # Calls already queued still run; the threads end after them.
        self._closed = True
        for _ in range(self._workers):
            self._calls.put(None)

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args, kwargs = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)


@functools.cache
def pool_size() -> int:
    """Threads (and database connections) per process; 0 means Channels' single thread.
    Fixed for the life of the process (asked on every socket message)."""
    if connection.vendor == "sqlite":
        return 0
    return settings.ASGI_DB_THREADS


def executor() -> Threads:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = Threads(pool_size(), "sg-db")
    return _executor


def _pooled(fn: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            # Not close_old_connections(): that re-arms the health check, a round trip.
            expired = connection.close_at is not None and time.monotonic() >= connection.close_at
            if connection.errors_occurred or expired:
                connection.close_if_unusable_or_obsolete()

    return call


def db(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """``await db(fn)(...)`` runs ``fn`` on a database thread of this process.

    A caller cancelled while ``fn`` runs (a socket closed, or the server stopping) stops
    waiting at once; ``fn`` finishes, or not, on its own thread."""
    if pool_size() <= 0:
        return database_sync_to_async(fn)
    pooled = _pooled(fn)

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor(), functools.partial(pooled, *args, **kwargs))

    return call
