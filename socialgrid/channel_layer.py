"""The Redis channel layer, made to hold through bursts and Redis restarts.

Bursts. channels_redis gives each event loop a ``redis.asyncio.ConnectionPool``; since
redis-py 8 such a pool holds at most 100 connections and *raises* when a 101st command wants
one. A burst of sockets opening or closing together (a network blip reconnecting thousands
of volunteers) runs thousands of group joins and leaves at once, and most would fail. A
blocking pool keeps the same bound on connections to Redis and makes the extra commands wait
their turn instead.

Restarts. One coroutine per process waits on Redis (BRPOP) for every socket of the process;
in channels_redis an error there reaches the consumer whose turn it was, and a consumer
whose receive fails is torn down with its socket, so a Redis restart dropped every socket of
every process at once. Here the wait is retried, with a growing pause, until Redis answers
again; the sockets stay open. A restarted (or flushed) Redis has also forgotten which
channels are in which groups, so the layer remembers the memberships of its own process and
adds them again after an error, and every ``rejoin_seconds`` in any case (which also renews
them before channels_redis's ``group_expiry`` drops them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_WAIT_SECONDS = 20
DEFAULT_REJOIN_SECONDS = 600.0
RETRY_FIRST, RETRY_MAX = 0.2, 5.0
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class BlockingPoolChannelLayer(RedisChannelLayer):
    def __init__(self, *args, rejoin_seconds: float = DEFAULT_REJOIN_SECONDS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rejoin_seconds = rejoin_seconds
        # group -> this process's channels in it (only channels that receive here, "!")
        self.memberships: dict[str, set[str]] = defaultdict(set)
        self._rejoined_at = time.monotonic()
        self._rejoin_needed = False
        self._rejoining: asyncio.Task | None = None

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        address = host.pop("address")
        host.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
        host.setdefault("timeout", DEFAULT_WAIT_SECONDS)
        return BlockingConnectionPool.from_url(address, **host)

    # --- memberships ----------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        if "!" in channel:
            self.memberships[group].add(channel)
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        members = self.memberships.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.memberships[group]
        await super().group_discard(group, channel)

    async def rejoin(self) -> int:
        """Add every remembered membership again, one pipeline per Redis host; returns how
        many. Adding a membership that is there already only renews its time."""
        by_index: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
        for group, channels in list(self.memberships.items()):
            if channels:
                by_index[self.consistent_hash(group)].append((group, list(channels)))
        now, n = time.time(), 0
        for index, groups in by_index.items():
            async with self.connection(index).pipeline(transaction=False) as pipe:
                for group, channels in groups:
                    key = self._group_key(group)
                    pipe.zadd(key, dict.fromkeys(channels, now))
                    pipe.expire(key, self.group_expiry)
                    n += len(channels)
                await pipe.execute()
        return n

    def _maybe_rejoin(self) -> None:
        due = time.monotonic() - self._rejoined_at >= self.rejoin_seconds
        if not (self._rejoin_needed or due) or (self._rejoining and not self._rejoining.done()):
            return
        self._rejoin_needed = False
        self._rejoined_at = time.monotonic()
        self._rejoining = asyncio.ensure_future(self._rejoin_logged())

    async def _rejoin_logged(self) -> None:
        try:
            n = await self.rejoin()
            log.info("channel layer: %d group memberships added again", n)
        except UNAVAILABLE as e:
            self._rejoin_needed = True
            log.warning("channel layer: could not add the group memberships again: %s", e)

    # --- receiving --------------------------------------------------------------------------

    async def _brpop_with_clean(self, index: int, channel: str, timeout: int):  # noqa: ASYNC109 (the parent signature)
        """The process's wait on Redis, retried while Redis cannot be reached."""
        pause = RETRY_FIRST
        while True:
            try:
                content = await super()._brpop_with_clean(index, channel, timeout)
            except UNAVAILABLE as e:
                if pause == RETRY_FIRST:
                    log.warning("channel layer: Redis unavailable (%s); retrying", e)
                self._rejoin_needed = True
                await asyncio.sleep(pause)
                pause = min(RETRY_MAX, pause * 2)
                continue
            self._maybe_rejoin()
            return content
