"""Live events for volunteers' sockets (credit, cancellations, membership changes), a batch
at a time, and the process's watch over idle sockets.

A validation batch grants credit to hundreds of hosts at once. Sent through the channel
layer, each would be its own group message: a Redis round trip in the worker, another in the
ASGI process, and about 1.5 ms of CPU between them. Here a batch is *one* message: the
worker publishes the list of events on one Redis channel; every ASGI process receives it once
and hands each event to the sockets it holds for that host or user (a dictionary lookup).
In the embedded mode the list goes straight to the server's event loop.

Events are best effort, as before: a volunteer who is not connected misses nothing durable,
since credit and cancellations are in the database and reach the host on its next request.
The subscription rides out a Redis restart: it is retried, with a growing pause, and the
sockets stay open.

Each event loop has one :class:`Hub`: the sockets of the loop by host and by user, one task
that reads the published events, and one task that closes sockets silent for longer than
the protocol allows (one task for all sockets, rather than a timer each).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from django.conf import settings

import orjson

log = logging.getLogger(__name__)

CHANNEL = "sg:live"
RETRY_FIRST, RETRY_MAX = 0.2, 5.0

# (kind, id, event): kind "host" reaches the sockets of one host, "user" every socket of
# one user's hosts.
Event = tuple[str, int, dict[str, Any]]


class LiveSocket(Protocol):
    last_message: float

    def live(self, event: dict[str, Any]) -> None: ...

    async def close_idle(self) -> None: ...


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """The hub of the running event loop."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub(loop)
    return found


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sockets: set[LiveSocket] = set()
        self.by_host: dict[int, set[LiveSocket]] = defaultdict(set)
        self.by_user: dict[int, set[LiveSocket]] = defaultdict(set)
        self.joined: dict[LiveSocket, tuple[int, int | None]] = {}
        self.tasks: list[asyncio.Task] = []

    def add(self, socket: LiveSocket) -> None:
        self.sockets.add(socket)
        if not self.tasks:
            self.tasks.append(self.loop.create_task(self._watch_idle()))
            if settings.REDIS_URL:
                self.tasks.append(self.loop.create_task(self._subscribe()))

    def join(self, socket: LiveSocket, host_id: int, user_id: int | None) -> None:
        self.joined[socket] = (host_id, user_id)
        self.by_host[host_id].add(socket)
        if user_id is not None:
            self.by_user[user_id].add(socket)

    def remove(self, socket: LiveSocket) -> None:
        self.sockets.discard(socket)
        host_id, user_id = self.joined.pop(socket, (None, None))
        for index, key in ((self.by_host, host_id), (self.by_user, user_id)):
            members = index.get(key)
            if members is not None:
                members.discard(socket)
                if not members:
                    del index[key]

    def deliver(self, events: Iterable[Event]) -> None:
        for kind, target, event in events:
            index = self.by_host if kind == "host" else self.by_user
            for socket in index.get(target, ()):
                socket.live(event)

    async def _watch_idle(self) -> None:
        idle = settings.PROTOCOL["IDLE_SECONDS"]
        while True:
            await asyncio.sleep(min(idle, 10.0))
            now = time.monotonic()
            for socket in [s for s in self.sockets if now - s.last_message > idle]:
                await socket.close_idle()

    async def _subscribe(self) -> None:
        import redis.asyncio

        pause = RETRY_FIRST
        while True:
            client = redis.asyncio.Redis.from_url(
                settings.REDIS_URL, socket_timeout=None, health_check_interval=15
            )
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    pause = RETRY_FIRST
                    while True:
                        message = await pubsub.get_message(timeout=30.0)
                        if message is not None:
                            self.deliver(orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("live events: subscription lost (%s); retrying in %.1f s", e, pause)
                await asyncio.sleep(pause)
                pause = min(RETRY_MAX, pause * 2)
            finally:
                await client.aclose()


# --- publishing, from any thread or process -----------------------------------------------------

_publisher = None


def publish(events: list[Event]) -> None:
    """Send events to whichever processes hold the sockets they are for."""
    if not events:
        return
    try:
        if settings.REDIS_URL:
            _redis().publish(CHANNEL, orjson.dumps(events))
        else:
            for loop, found in list(_hubs.items()):
                if not loop.is_closed():
                    loop.call_soon_threadsafe(found.deliver, events)
    except Exception:
        # Live updates must never break the engine; the database holds the truth.
        log.warning("could not send %d live events", len(events), exc_info=True)


def _redis():
    global _publisher
    if _publisher is None:
        import redis

        _publisher = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return _publisher
