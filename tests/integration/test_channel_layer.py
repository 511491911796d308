"""The Redis channel layer under a burst of sockets joining and leaving groups at once."""

from __future__ import annotations

import asyncio

from django.conf import settings

import pytest
from channels_redis.core import RedisChannelLayer
from redis.asyncio import Redis

from socialgrid.channel_layer import BlockingPoolChannelLayer

pytestmark = pytest.mark.integration


def _layer(max_connections: int, cls: type = BlockingPoolChannelLayer) -> RedisChannelLayer:
    return cls(
        hosts=[{"address": settings.REDIS_URL, "max_connections": max_connections}],
        prefix=f"sg:burst:{id(object())}",
    )


async def _burst(layer: RedisChannelLayer, n: int) -> list[BaseException | None]:
    names = [await layer.new_channel() for _ in range(n)]
    added = await asyncio.gather(
        *(layer.group_add(f"host_{i}", name) for i, name in enumerate(names)),
        return_exceptions=True,
    )
    discarded = await asyncio.gather(
        *(layer.group_discard(f"host_{i}", name) for i, name in enumerate(names)),
        return_exceptions=True,
    )
    return [*added, *discarded]


@pytest.mark.asyncio
async def test_a_thousand_joins_and_leaves_at_once_all_succeed_on_few_connections():
    layer = _layer(max_connections=10)
    try:
        outcomes = await _burst(layer, 1000)
        assert [o for o in outcomes if o is not None] == []
        # Every group is empty again: nothing was left behind in Redis.
        redis = Redis.from_url(settings.REDIS_URL)
        try:
            assert await redis.keys(f"{layer.prefix}:group:*") == []
        finally:
            await redis.aclose()
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest.mark.asyncio
async def test_a_group_send_reaches_its_members_after_the_burst():
    layer = _layer(max_connections=5)
    try:
        await _burst(layer, 200)
        name = await layer.new_channel()
        await layer.group_add("host_x", name)
        await layer.group_send("host_x", {"type": "compute.credit", "amount": 1.5})
        assert await asyncio.wait_for(layer.receive(name), 5) == {
            "type": "compute.credit",
            "amount": 1.5,
        }
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest.mark.asyncio
async def test_the_stock_pool_refuses_the_same_burst():
    """Why the blocking pool: channels_redis's own pool raises past its connection bound."""
    layer = _layer(max_connections=10, cls=RedisChannelLayer)
    try:
        outcomes = await _burst(layer, 1000)
        assert any(o is not None for o in outcomes)
    finally:
        await layer.flush()
        await layer.close_pools()
