"""The dispatch cache: ready replicas, pre-loaded in bulk so a lease never scans the database.

BOINC's feeder fills a shared-memory array that the scheduler reads; here each app has a
priority queue of ready replicas, kept in Redis when the platform runs on services and in
this process when it runs embedded. Entries are ``(replica id, work unit id)`` ordered by
work unit priority, then by work unit id, with the n-th replica of a work unit placed
``SPREAD`` positions after the first: a host that pops a handful of entries gets different
work units, and the replicas of one work unit still go out close together.

The cache is only a hint. The lease itself is a conditional UPDATE in the database, so a
stale entry (already leased, work unit finished) costs one skipped row, and losing the
whole cache (a Redis flush or restart) loses nothing: ``refill`` rebuilds it from the
database, scanning each app's unsent replicas by id from a cursor kept next to the queue.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

from compute.models import App
from compute.states import ServerState

if TYPE_CHECKING:
    from compute.dispatch.dialect import Dialect

SPREAD = 64
PRIORITY_WEIGHT = 2**36
MAX_PRIORITY = 1000


@dataclass(frozen=True, order=True)
class Entry:
    score: float
    replica_id: int
    workunit_id: int


def score(priority: int, workunit_id: int, ordinal: int) -> float:
    priority = max(-MAX_PRIORITY, min(MAX_PRIORITY, priority))
    return float(-priority * PRIORITY_WEIGHT + workunit_id + ordinal * SPREAD)


class ReadyQueue(Protocol):
    def push(self, app_id: int, entries: list[Entry]) -> None: ...
    def pop(self, app_id: int, count: int) -> list[Entry]: ...
    def size(self, app_id: int) -> int: ...
    def get_cursor(self, app_id: int) -> int: ...
    def set_cursor(self, app_id: int, cursor: int) -> None: ...
    def clear(self) -> None: ...


class LocalReadyQueue:
    """In-process queues for the embedded mode (one process serves every volunteer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heaps: dict[int, list[Entry]] = {}
        self._members: dict[int, set[int]] = {}
        self._cursors: dict[int, int] = {}

    def push(self, app_id: int, entries: list[Entry]) -> None:
        with self._lock:
            heap = self._heaps.setdefault(app_id, [])
            members = self._members.setdefault(app_id, set())
            for entry in entries:
                if entry.replica_id not in members:
                    members.add(entry.replica_id)
                    heapq.heappush(heap, entry)

    def pop(self, app_id: int, count: int) -> list[Entry]:
        with self._lock:
            heap = self._heaps.get(app_id, [])
            members = self._members.get(app_id, set())
            out = []
            while heap and len(out) < count:
                entry = heapq.heappop(heap)
                members.discard(entry.replica_id)
                out.append(entry)
            return out

    def size(self, app_id: int) -> int:
        with self._lock:
            return len(self._heaps.get(app_id, []))

    def get_cursor(self, app_id: int) -> int:
        return self._cursors.get(app_id, 0)

    def set_cursor(self, app_id: int, cursor: int) -> None:
        self._cursors[app_id] = cursor

    def clear(self) -> None:
        with self._lock:
            self._heaps.clear()
            self._members.clear()
            self._cursors.clear()


class RedisReadyQueue:
    """One sorted set per app; ZPOPMIN hands each entry to exactly one caller."""

    def __init__(self, url: str, prefix: str = "sg:ready") -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=5, health_check_interval=30)
        self.prefix = prefix

    def _key(self, app_id: int) -> str:
        return f"{self.prefix}:{app_id}"

    def push(self, app_id: int, entries: list[Entry]) -> None:
        if entries:
            self.redis.zadd(
                self._key(app_id), {f"{e.replica_id}:{e.workunit_id}": e.score for e in entries}
            )

    def pop(self, app_id: int, count: int) -> list[Entry]:
        if count <= 0:
            return []
        out = []
        for member, member_score in self.redis.zpopmin(self._key(app_id), count):
            replica_id, _, workunit_id = member.decode().partition(":")
            out.append(Entry(member_score, int(replica_id), int(workunit_id)))
        return out

    def size(self, app_id: int) -> int:
        return int(self.redis.zcard(self._key(app_id)))

    def get_cursor(self, app_id: int) -> int:
        value = self.redis.hget(f"{self.prefix}:cursor", str(app_id))
        return int(value) if value else 0

    def set_cursor(self, app_id: int, cursor: int) -> None:
        self.redis.hset(f"{self.prefix}:cursor", str(app_id), cursor)

    def clear(self) -> None:
        keys = list(self.redis.scan_iter(f"{self.prefix}:*"))
        if keys:
            self.redis.delete(*keys)


@lru_cache(maxsize=1)
def get_queue() -> ReadyQueue:
    if settings.COMPUTE["FEEDER_BACKEND"] == "redis":
        return RedisReadyQueue(settings.REDIS_URL)
    return LocalReadyQueue()


# The state is written into the statement, not passed: the partial index of unsent
# replicas per app serves it only when the planner can see which state is asked for, and
# prepared statements are planned for any values (compute.dispatch.dialect).
UNSENT = f"""
SELECT r.id, r.workunit_id, r.ordinal, w.priority
FROM compute_replica r JOIN compute_workunit w ON w.id = r.workunit_id
WHERE r.app_id = %s AND r.server_state = '{ServerState.UNSENT.value}' AND r.id > %s
ORDER BY r.id LIMIT %s
"""


def refill(
    app_id: int,
    limit: int | None = None,
    queue: ReadyQueue | None = None,
    sql: Dialect | None = None,
) -> int:
    """Load up to ``limit`` unsent replicas of an app into its queue; returns how many.

    Scans forward from the app's cursor (the partial index of unsent replicas per app); on
    reaching the end it rewinds, so replicas whose entries were lost (a process that died
    between pop and lease, a flushed Redis) come back on the next pass. Re-adding an entry
    already queued is harmless.
    """
    from compute.dispatch import dialect

    queue = queue or get_queue()
    sql = sql or dialect.current()
    limit = limit or settings.COMPUTE["FEEDER_BATCH"]
    cursor = queue.get_cursor(app_id)
    rows = sql.execute(UNSENT, [app_id, cursor, limit])
    queue.push(
        app_id, [Entry(score(prio, wu, ordinal), rid, wu) for rid, wu, ordinal, prio in rows]
    )
    queue.set_cursor(app_id, rows[-1][0] if len(rows) == limit else 0)
    return len(rows)


def refill_all(queue: ReadyQueue | None = None) -> dict[int, int]:
    """The periodic feeder: top up every active app whose queue is below the low-water mark."""
    queue = queue or get_queue()
    low_water = settings.COMPUTE["FEEDER_LOW_WATER"]
    loaded = {}
    app_ids = App.objects.filter(project__is_active=True).values_list("id", flat=True)
    for app_id in app_ids:
        if queue.size(app_id) <= low_water:
            loaded[app_id] = refill(app_id, queue=queue)
    return loaded


def push_back(app_id: int, entries: list[Entry], queue: ReadyQueue | None = None) -> None:
    """Return entries this host could not take, for another host to lease."""
    if entries:
        (queue or get_queue()).push(app_id, entries)
