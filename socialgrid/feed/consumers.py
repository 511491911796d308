"""The live feed socket at /ws/feed/: a signed-in volunteer's open feed page listens on their
own ``user_<id>`` group and receives the items published for them (socialgrid.feed.live).

Thin and read-only: the group comes from the session, never from the client, and anything
the client sends is ignored.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from compute import notify
from socialgrid.ratelimit import hit

UNAUTHENTICATED = 4001  # as compute.protocol.Close: sign in first
TOO_MANY_CONNECTIONS = 4029
# A page reconnects with a growing delay; more than this many sockets a minute is a loop or
# abuse, and each one costs a group membership.
CONNECTS_PER_MINUTE = 30


class FeedConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        # Events published from other threads (the embedded beat) reach this loop through
        # compute.notify when the in-memory channel layer is used.
        notify.bind_loop(asyncio.get_running_loop())
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(UNAUTHENTICATED)
            return
        if not await sync_to_async(hit)(f"feed-ws:u{user.pk}", CONNECTS_PER_MINUTE, 60):
            await self.refuse(TOO_MANY_CONNECTIONS)
            return
        # Join before accepting: an item published once the page sees the socket open must
        # not slip past it.
        self.group = notify.user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def refuse(self, code: int) -> None:
        # Accept, then close, so the browser sees the code (a refused handshake has none).
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # user_<id> is every page's group of that user; events meant for other pages (which
        # this one has no handler for) are ignored instead of closing the socket.
        if hasattr(self, get_handler_name(message)):
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Listeners have nothing to say.
        return

    async def feed_item(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": "item", "item": event["item"]}))
