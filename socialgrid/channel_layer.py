"""The Redis channel layer with a bounded, blocking connection pool.

channels_redis gives each event loop a ``redis.asyncio.ConnectionPool``; since redis-py 8 such
a pool holds at most 100 connections and *raises* when a 101st command wants one. A burst of
sockets opening or closing together (a network blip reconnecting thousands of volunteers)
runs thousands of group joins and leaves at once, and most would fail. A blocking pool keeps
the same bound on connections to Redis and makes the extra commands wait their turn instead.
"""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_WAIT_SECONDS = 20


class BlockingPoolChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        address = host.pop("address")
        host.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
        host.setdefault("timeout", DEFAULT_WAIT_SECONDS)
        return BlockingConnectionPool.from_url(address, **host)
