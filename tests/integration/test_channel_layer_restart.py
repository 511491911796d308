"""The channel layer across a Redis restart, against a redis-server of the test's own: the
process's receive waits for Redis instead of failing its sockets, and the group memberships
a restarted (empty) Redis forgot are added again."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from channels_redis.core import RedisChannelLayer
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from socialgrid.channel_layer import BlockingPoolChannelLayer

pytestmark = pytest.mark.integration

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class Server:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if Redis(port=self.port, socket_timeout=1).ping():
                    return
            except RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def redis_server() -> Iterator[Server]:
    if not shutil.which(REDIS_SERVER):
        pytest.fail(f"the test starts its own Redis server: {REDIS_SERVER} is missing")
    server = Server()
    server.start()
    yield server
    if server.proc.poll() is None:
        server.kill()


def _layer(cls: type, url: str) -> RedisChannelLayer:
    # As in settings: reads wait longer than the layer's 5 s BRPOP.
    kwargs = {"rejoin_seconds": 3600} if cls is BlockingPoolChannelLayer else {}
    return cls(hosts=[{"address": url, "socket_timeout": 15}], prefix="sg:restart", **kwargs)


async def _blocked_on(server: Server) -> None:
    """Until a client waits in a blocking read on ``server`` (the layer's BRPOP): a restart
    then cuts a receive in the middle, not before it started."""
    deadline = time.monotonic() + 15
    while not Redis(port=server.port).info("clients")["blocked_clients"]:
        assert time.monotonic() < deadline, "the receive never reached Redis"
        await asyncio.sleep(0.02)


async def _restart(server: Server, down: float = 0.5) -> None:
    server.kill()
    await asyncio.sleep(down)
    server.start()


@pytest.mark.asyncio
async def test_a_receive_waits_through_a_restart_and_the_group_reaches_it_again(redis_server):
    layer = _layer(BlockingPoolChannelLayer, redis_server.url)
    try:
        name = await layer.new_channel()
        await layer.group_add("host_1", name)
        receiving = asyncio.ensure_future(layer.receive(name))
        await _blocked_on(redis_server)

        await _restart(redis_server)
        # The restarted server is empty; the layer adds its memberships again once the
        # receive loop reaches it, then the group's messages arrive.
        deadline = time.monotonic() + 15
        while not await layer.connection(0).exists("sg:restart:group:host_1"):
            assert not receiving.done(), receiving.exception()
            assert time.monotonic() < deadline, "the membership was not added again"
            await asyncio.sleep(0.1)
        await layer.group_send("host_1", {"type": "compute.credit", "amount": 2.0})
        assert await asyncio.wait_for(receiving, 10) == {"type": "compute.credit", "amount": 2.0}
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest.mark.asyncio
async def test_a_flushed_membership_comes_back_with_the_periodic_rejoin(redis_server):
    layer = BlockingPoolChannelLayer(
        hosts=[{"address": redis_server.url, "socket_timeout": 15}],
        prefix="sg:restart",
        rejoin_seconds=1,
    )
    try:
        name = await layer.new_channel()
        await layer.group_add("host_2", name)
        await layer.group_add("host_3", name)
        await layer.group_discard("host_3", name)
        receiving = asyncio.ensure_future(layer.receive(name))
        await _blocked_on(redis_server)
        Redis(port=redis_server.port).flushall()
        # Until the rejoin comes round the group is empty; a message to it is dropped.
        deadline = time.monotonic() + 15
        while not await layer.connection(0).exists("sg:restart:group:host_2"):
            assert time.monotonic() < deadline, "the membership was not renewed"
            await asyncio.sleep(0.1)
        # Only what is still joined comes back.
        assert not await layer.connection(0).exists("sg:restart:group:host_3")
        await layer.group_send("host_2", {"type": "compute.credit", "amount": 3.0})
        assert await asyncio.wait_for(receiving, 10) == {"type": "compute.credit", "amount": 3.0}
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest.mark.asyncio
async def test_the_stock_layer_fails_the_receive_when_redis_restarts(redis_server):
    """Why: with channels_redis's own layer the error reaches the consumer, which Channels
    then tears down with its socket."""
    layer = _layer(RedisChannelLayer, redis_server.url)
    try:
        name = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(name))
        await _blocked_on(redis_server)
        await _restart(redis_server)
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(receiving, 15)
    finally:
        await layer.close_pools()
