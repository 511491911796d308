"""WebSocket consumers: the volunteer protocol at /ws/worker/ and live project pages.

Thin on purpose: parse and check a message (compute.protocol), call one domain function
(scheduler, results, hosts) in a worker thread, send the answer. Lease and result messages
are answered directly; only broadcasts (cancel, credit, project counters) go through the
channel layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from compute import dbthreads, hosts, notify, protocol, results, scheduler
from compute.dbthreads import db
from compute.protocol import Close, Code
from compute.ratelimit import TokenBucket

log = logging.getLogger(__name__)

CLOSE_FOR = {
    "unauthenticated": Close.UNAUTHENTICATED,
    "forbidden": Close.FORBIDDEN,
    "unknown_project": Close.UNKNOWN_PROJECT,
}
TOUCH_EVERY = 60.0
# Refusals an honest host meets after being away; they do not count as violations.
STALE = {Code.NOT_IN_PROGRESS, Code.LEASE_EXPIRED}


class WorkerConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        notify.bind_loop(asyncio.get_running_loop())
        cfg = settings.PROTOCOL
        self.max_bytes = cfg["MAX_MESSAGE_BYTES"]
        self.bucket = TokenBucket(cfg["MESSAGES_PER_SECOND"], 2 * cfg["MESSAGES_PER_SECOND"])
        self.violations = 0
        self.session: hosts.Session | None = None
        self.host_total = 0.0
        self.last_message = time.monotonic()
        self.last_touch = 0.0
        self.gone = False
        await self.accept()
        self.watchdog = asyncio.create_task(self._close_when_idle(cfg["IDLE_SECONDS"]))

    async def dispatch(self, message: dict[str, Any]) -> None:
        if dbthreads.pool_size() <= 0:
            await super().dispatch(message)
            return
        # As Channels does, without its per-message close_old_connections(): a hop to another
        # thread for every message. The database threads look after their own connections.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        self.gone = True
        self.watchdog.cancel()
        for group in self.groups_joined():
            await self.channel_layer.group_discard(group, self.channel_name)

    def groups_joined(self) -> list[str]:
        if self.session is None:
            return []
        groups = [notify.host_group(self.session.host.id)]
        if self.session.host.user_id is not None:
            groups.append(notify.user_hosts_group(self.session.host.user_id))
        return groups

    async def _close_when_idle(self, idle_seconds: float) -> None:
        while True:
            await asyncio.sleep(min(idle_seconds, 10.0))
            if time.monotonic() - self.last_message > idle_seconds:
                await self.close(code=Close.IDLE)
                return

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def violation(self, code: Code, message: str, replica: int | None = None) -> None:
        self.violations += 1
        if self.violations > settings.PROTOCOL["MAX_VIOLATIONS"]:
            await self.close(code=Close.TOO_MANY_VIOLATIONS)
            return
        await self.send_json(protocol.error(code, message, replica))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_message = time.monotonic()
        if text_data is None:
            return await self.violation(Code.BAD_JSON, "binary frames are not part of the protocol")
        if len(text_data) > self.max_bytes or (
            4 * len(text_data) > self.max_bytes and len(text_data.encode()) > self.max_bytes
        ):
            return await self.violation(
                Code.TOO_LARGE, f"messages are limited to {self.max_bytes} bytes"
            )
        if not self.bucket.take():
            return await self.violation(Code.RATE_LIMITED, "too many messages; slow down")
        try:
            message = protocol.parse(text_data)
        except protocol.ProtocolError as e:
            return await self.violation(e.code, e.message)
        if isinstance(message, protocol.Hello):
            if self.session is not None:
                return await self.violation(Code.ALREADY_HELLO, "hello was already sent")
            return await self.hello(message)
        if self.session is None:
            return await self.violation(Code.HELLO_FIRST, "say hello first")
        try:
            await self.dispatch_message(message)
        except Exception:
            log.exception("failed to handle a %s message", type(message).__name__)
            await self.send_json(
                protocol.error(Code.SERVER_ERROR, "the server failed; retry later")
            )
        await self._touch()

    async def dispatch_message(self, message: protocol.Message) -> None:
        host = self.session.host
        if isinstance(message, protocol.Request):
            tasks = await db(scheduler.lease_replicas)(
                host, message.n, project_ids=self.session.project_ids
            )
            retry = None if tasks else settings.PROTOCOL["RETRY_AFTER_SECONDS"]
            await self.send_json(protocol.assign(tasks, retry))
        elif isinstance(message, protocol.Result):
            receipt = await db(results.record_result)(
                host, message.replica, message.lease, message.output, message.cpu_time
            )
            await self._answer(receipt, "result", message.replica)
        elif isinstance(message, protocol.Failure):
            receipt = await db(results.record_error)(
                host, message.replica, message.lease, message.reason
            )
            await self._answer(receipt, "error", message.replica)
        elif isinstance(message, protocol.Progress):
            receipt = await db(results.extend_lease)(
                host, message.replica, message.lease, message.fraction
            )
            await self._answer(receipt, "progress", message.replica)
        elif isinstance(message, protocol.Heartbeat):
            await self.send_json(protocol.heartbeat(timezone.now()))

    async def _answer(self, receipt: results.Receipt, of: str, replica: int) -> None:
        if receipt.accepted:
            await self.send_json(protocol.ack(of, replica, receipt.deadline))
            return
        code = Code(str(receipt.refusal))
        message = f"{of} refused: {code.value.replace('_', ' ')}"
        if code in STALE:
            # An honest host back from a long absence re-sends results whose leases ran out
            # or were reissued; that is not abuse and must not get it disconnected.
            await self.send_json(protocol.error(code, message, replica))
        else:
            await self.violation(code, message, replica)

    async def hello(self, message: protocol.Hello) -> None:
        if message.v != protocol.VERSION:
            await self.close(code=Close.UNSUPPORTED_VERSION)
            return
        try:
            session = await db(hosts.open_session)(
                self.scope.get("user"),
                message.capabilities,
                host_uuid=message.host,
                token=message.host_token,
                project_slug=message.project,
            )
        except hosts.Refused as e:
            await self.send_json(protocol.notice(e.message, "warning"))
            await self.close(code=CLOSE_FOR[e.reason])
            return
        self.session = session
        self.host_total = session.host.total_credit
        self.last_touch = time.monotonic()
        for group in self.groups_joined():
            await self.channel_layer.group_add(group, self.channel_name)
        cfg = settings.PROTOCOL
        user = self.scope.get("user")
        await self.send_json(
            protocol.welcome(
                host=str(session.host.uuid),
                host_token=session.host_token,
                user=user.get_username() if user is not None and user.is_authenticated else None,
                limits={
                    "max_message_bytes": self.max_bytes,
                    "messages_per_second": cfg["MESSAGES_PER_SECOND"],
                    "max_in_flight": settings.COMPUTE["PREFETCH_PER_CORE"] * session.host.cores,
                    "heartbeat_seconds": cfg["HEARTBEAT_SECONDS"],
                },
                resume=session.resume,
                host_total=self.host_total,
                user_total=session.user_total,
            )
        )

    async def _touch(self) -> None:
        now = time.monotonic()
        if now - self.last_touch > TOUCH_EVERY:
            self.last_touch = now
            await db(hosts.touch)(self.session.host.id)

    # --- channel-layer events ---------------------------------------------------------------

    async def compute_cancel(self, event: dict[str, Any]) -> None:
        await self.send_json(protocol.cancel(event["replicas"]))

    async def compute_credit(self, event: dict[str, Any]) -> None:
        self.host_total += event["amount"]
        await self.send_json(protocol.credit(event["amount"], self.host_total))

    async def compute_membership(self, event: dict[str, Any]) -> None:
        await self.send_json(
            protocol.membership(event["project"], event["state"], event["no_more_work"])
        )

    async def compute_notice(self, event: dict[str, Any]) -> None:
        await self.send_json(protocol.notice(event["text"], event.get("level", "info")))


class ProjectConsumer(AsyncWebsocketConsumer):
    """Live counters of a public project page (read-only; anyone may listen)."""

    async def connect(self) -> None:
        notify.bind_loop(asyncio.get_running_loop())
        slug = self.scope["url_route"]["kwargs"]["slug"]
        stats = await db(_public_project_stats)(slug)
        if stats is None:
            await self.close(code=Close.UNKNOWN_PROJECT)
            return
        self.group = notify.project_group(stats.pop("project_id"))
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"type": "stats", **stats}))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Listeners have nothing to say; anything sent is ignored.
        return

    async def project_stats(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": "stats", **event["stats"]}))


def _public_project_stats(slug: str) -> dict[str, Any] | None:
    from compute.models import Project
    from compute.stats import project_stats

    project = Project.objects.filter(slug=slug, is_public=True).first()
    if project is None:
        return None
    return {"project_id": project.id, **project_stats(project)}
