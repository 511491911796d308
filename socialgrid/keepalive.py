"""WebSocket keep-alive pings for all of a process's sockets from one timer.

uvicorn keeps each socket alive with timers of its own: one for the next ping and one for
the pong's deadline, so every ping costs two timers and its own turns of the event loop
(the timer's, then the pong's). Here one timer per event loop ticks every ``TICK`` seconds
while any socket waits: a tick sends the pings that are due and closes the sockets whose
pong is overdue. The pings of a tick leave together and their pongs come back together, so
the event loop reads many of them in one turn.

The timing is uvicorn's (``--ws-ping-interval``, ``--ws-ping-timeout``) rounded up to the
next tick: a socket is pinged at most ``TICK`` late and closed (1011) at most ``TICK`` after
its pong was due. Select it with ``--ws socialgrid.keepalive:KeepaliveProtocol``.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import weakref
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

TICK = 1.0

PING, PONG = "ping", "pong"


class Wheel:
    """The sockets of one event loop that wait for a ping or a pong, by the tick at which
    they are due."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.slots: dict[int, set[KeepaliveProtocol]] = {}
        self.timer: asyncio.TimerHandle | None = None

    def add(self, socket: KeepaliveProtocol, when: float) -> int:
        slot = math.ceil(when / TICK)
        self.slots.setdefault(slot, set()).add(socket)
        if self.timer is None:
            self.timer = self.loop.call_later(TICK, self.tick)
        return slot

    def discard(self, socket: KeepaliveProtocol, slot: int) -> None:
        waiting = self.slots.get(slot)
        if waiting is not None:
            waiting.discard(socket)

    def tick(self) -> None:
        now = self.loop.time() / TICK
        for slot in sorted(s for s in self.slots if s <= now):
            for socket in self.slots.pop(slot):
                socket.due()
        self.timer = self.loop.call_later(TICK, self.tick) if self.slots else None


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Wheel] = weakref.WeakKeyDictionary()


def wheel(loop: asyncio.AbstractEventLoop) -> Wheel:
    found = _wheels.get(loop)
    if found is None:
        found = _wheels[loop] = Wheel(loop)
    return found


class KeepaliveProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, its keep-alive timers replaced by the loop's
    wheel."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting: str | None = None  # PING or PONG while in the wheel
        self.slot = 0

    def schedule_ping(self) -> None:
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self._wait(PING, self.loop.time() + delay)

    def send_keepalive_ping(self) -> None:
        if self.close_sent or self.transport.is_closing():
            return
        # A payload of its own, so a late pong of an earlier ping is not taken for this one.
        self.pending_ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(self.pending_ping_payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is not None:
            self._wait(PONG, self.ping_sent_at + self.ping_timeout)
        else:
            self.schedule_ping()

    def handle_pong(self, event: Any) -> None:
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return  # unsolicited, or the pong of an earlier ping
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        if self.waiting == PONG:
            self._leave()
            self.schedule_ping()

    def stop_keepalive(self) -> None:
        self._leave()
        super().stop_keepalive()

    def due(self) -> None:
        """The wheel's tick reached this socket's ping or its pong's deadline."""
        waiting, self.waiting = self.waiting, None
        if waiting == PING:
            self.send_keepalive_ping()
        elif waiting == PONG:
            self.keepalive_timeout()

    def _wait(self, what: str, when: float) -> None:
        self._leave()
        self.waiting = what
        self.slot = wheel(self.loop).add(self, when)

    def _leave(self) -> None:
        if self.waiting is not None:
            wheel(self.loop).discard(self, self.slot)
            self.waiting = None
