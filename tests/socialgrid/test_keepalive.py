"""Keep-alive pings from the event loop's one timer (socialgrid.keepalive), seen from the
wire: a peer that answers stays connected and is pinged every interval, one that does not is
closed with 1011, and sockets that go leave nothing behind in the wheel."""

from __future__ import annotations

import asyncio
import itertools
import os
import struct

import pytest
import pytest_asyncio
import uvicorn

from socialgrid import keepalive
from tests.compute.test_headless import free_port

INTERVAL = TIMEOUT = 1.0


async def app(scope, receive, send):
    """Accepts a socket and holds it until the peer goes."""
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


@pytest_asyncio.fixture
async def server():
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws="socialgrid.keepalive:KeepaliveProtocol",
        ws_ping_interval=INTERVAL,
        ws_ping_timeout=TIMEOUT,
        lifespan="off",
        log_config=None,
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:
        assert not task.done(), task.result()
        await asyncio.sleep(0.02)
    yield port
    served.should_exit = True
    await asyncio.wait_for(task, 10)


class Peer:
    """A WebSocket client written out by hand, so that it answers pings only if told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        assert second < 126  # the server's control frames are short and unmasked
        return first & 0x0F, await self.reader.readexactly(second)

    def pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.mark.asyncio
async def test_a_peer_that_answers_is_pinged_every_interval_and_stays(server):
    peer = await Peer.connect(server)
    loop = asyncio.get_running_loop()
    start, pings = loop.time(), []
    while len(pings) < 3:
        opcode, payload = await asyncio.wait_for(peer.frame(), INTERVAL + 2 * keepalive.TICK)
        assert opcode == 0x9, f"a ping, not opcode {opcode}"
        pings.append(loop.time() - start)
        peer.pong(payload)
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert all(INTERVAL - 0.2 <= g <= INTERVAL + keepalive.TICK + 0.2 for g in gaps), gaps
    assert not peer.reader.at_eof()
    await peer.close()


@pytest.mark.asyncio
async def test_a_peer_that_never_answers_is_closed_with_1011(server):
    peer = await Peer.connect(server)
    loop = asyncio.get_running_loop()
    start = loop.time()
    opcode, _ = await asyncio.wait_for(peer.frame(), INTERVAL + 2 * keepalive.TICK)
    assert opcode == 0x9
    opcode, payload = await asyncio.wait_for(peer.frame(), TIMEOUT + 2 * keepalive.TICK)
    assert opcode == 0x8, f"a close, not opcode {opcode}"
    assert struct.unpack("!H", payload[:2])[0] == 1011
    assert loop.time() - start <= INTERVAL + TIMEOUT + 2 * keepalive.TICK + 0.5
    assert await asyncio.wait_for(peer.reader.read(), 5) == b""  # and the server hung up


@pytest.mark.asyncio
async def test_sockets_that_go_leave_the_wheel(server):
    peers = await asyncio.gather(*(Peer.connect(server) for _ in range(20)))
    wheel = keepalive.wheel(asyncio.get_running_loop())
    await asyncio.sleep(0.2)
    waiting = {s for members in wheel.slots.values() for s in members}
    assert len(waiting) == 20
    # Sockets connected together are due at the same tick, and pinged together.
    assert len([slot for slot, members in wheel.slots.items() if members]) <= 2
    for peer in peers:
        await peer.close()
    for _ in range(50):
        if not any(wheel.slots.values()):
            break
        await asyncio.sleep(0.05)
    assert not any(wheel.slots.values())
