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
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import connection

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


@functools.cache
def pool_size() -> int:
    """Threads (and database connections) per process; 0 means Channels' single thread.
    Fixed for the life of the process (asked on every socket message)."""
    if connection.vendor == "sqlite":
        return 0
    return settings.ASGI_DB_THREADS


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=pool_size(), thread_name_prefix="sg-db")
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
    """``await db(fn)(...)`` runs ``fn`` on a database thread of this process."""
    if pool_size() <= 0:
        return database_sync_to_async(fn)
    return SyncToAsync(_pooled(fn), thread_sensitive=False, executor=executor())
