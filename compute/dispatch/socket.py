"""A volunteer's WebSocket (``/ws/worker/``): the first stop of the dispatch path.

Thin on purpose: check a frame's size and rate, parse it (:mod:`compute.protocol`), hand
what needs the database to the process's writer as an op (:mod:`compute.dispatch.writer`)
and answer once the writer says its flush has committed. A result may carry a request for
more work; both ops ride in the same flush and the ack carries the new tasks.

Messages of one socket are handled one after the other, as they arrive; many sockets'
messages meet in the writer. Live events (credit, cancellations, membership changes) come
from the process's hub (:mod:`compute.dispatch.live`), not through the channel layer, so the
socket has one source of messages and Channels' loop over two is replaced by a plain one.

A volunteer going away is normal: a socket that closes while its answer is being prepared
is left alone, and nothing is sent, or logged above DEBUG, after it closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from compute import hosts, notify, protocol
from compute.dbthreads import db
from compute.dispatch import live, writer
from compute.dispatch.ops import (
    Failed,
    HostRef,
    Lease,
    Receipt,
    ReportError,
    ReportProgress,
    result_report,
)
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
FAILED_MESSAGE = "the server failed; retry later"


class WorkerConsumer(AsyncWebsocketConsumer):
    async def __call__(self, scope, receive, send) -> None:
        # Channels' own loop waits on the channel layer beside the socket (two tasks and an
        # asyncio.wait per message); this socket's events come from the hub instead.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # As Channels does, without its per-message close_old_connections(): the database
        # is reached through the writer, which looks after its own connection.
        kind = message["type"]
        if kind == "websocket.receive":
            await self.websocket_receive(message)
        elif kind == "websocket.connect":
            await self.websocket_connect(message)
        elif kind == "websocket.disconnect":
            await self.websocket_disconnect(message)

    async def connect(self) -> None:
        notify.bind_loop(asyncio.get_running_loop())
        cfg = settings.PROTOCOL
        self.max_bytes = cfg["MAX_MESSAGE_BYTES"]
        self.bucket = TokenBucket(cfg["MESSAGES_PER_SECOND"], 2 * cfg["MESSAGES_PER_SECOND"])
        self.violations = 0
        self.session: hosts.Session | None = None
        self.host: HostRef | None = None
        self.host_total = 0.0
        self.user_total: float | None = None  # signed in: the volunteer's, on every page
        self.last_message = time.monotonic()
        self.last_touch = 0.0
        self.closed = False
        self.outbox: list[dict[str, Any]] = []
        self.hub = live.hub()
        await self.accept()
        self.hub.add(self)

    async def disconnect(self, code: int) -> None:
        self.closed = True
        self.hub.remove(self)

    # --- sending ----------------------------------------------------------------------------

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send_text(protocol.encode(message))

    async def send_text(self, text: str) -> None:
        if self.closed:
            return
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except OSError:
            # The client went away while its answer was on its way (uvicorn's
            # ClientDisconnected is an OSError): nothing to do, nothing to report.
            self.closed = True
            log.debug("socket closed before its answer was sent")

    async def shut(self, code: int) -> None:
        """Close once; nothing is handled or sent afterwards."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.close(code=code)
        except OSError:
            log.debug("socket closed before its close frame was sent")

    async def close_idle(self) -> None:
        await self.shut(Close.IDLE)

    async def violation(self, code: Code, message: str, replica: int | None = None) -> None:
        self.violations += 1
        if self.violations > settings.PROTOCOL["MAX_VIOLATIONS"]:
            await self.shut(Close.TOO_MANY_VIOLATIONS)
            return
        await self.send_json(protocol.error(code, message, replica))

    # --- receiving --------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closed:
            return
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
        if text_data == protocol.HEARTBEAT and self.session is not None:
            # What idle volunteers send, and nothing else: answered without parsing.
            await self.send_text(protocol.heartbeat_frame(time.time()))
            self._touch()
            return
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
            await self.handle(message)
        except Exception:
            # A fault of the server's (the writer answers database failures itself): the
            # volunteer hears it may retry, and keeps its socket.
            log.exception("failed to handle a %s message", type(message).__name__)
            await self.send_json(protocol.error(Code.SERVER_ERROR, FAILED_MESSAGE))
        self._touch()

    async def handle(self, message: protocol.Message) -> None:
        host = self.host
        if isinstance(message, protocol.Result):
            await self.result(message)
        elif isinstance(message, protocol.Request):
            tasks = await writer.get().submit(Lease(host, message.n))
            await self._assign(tasks)
        elif isinstance(message, protocol.Failure):
            op = ReportError(host, message.replica, message.lease, message.reason)
            await self._answer(await writer.get().submit(op), "error", message.replica)
        elif isinstance(message, protocol.Progress):
            op = ReportProgress(host, message.replica, message.lease, message.fraction)
            await self._answer(await writer.get().submit(op), "progress", message.replica)
        elif isinstance(message, protocol.Heartbeat):
            await self.send_text(protocol.heartbeat_frame(time.time()))

    async def result(self, message: protocol.Result) -> None:
        op = result_report(
            self.host, message.replica, message.lease, message.output, message.cpu_time
        )
        out = writer.get()
        recorded = out.submit(op) if not isinstance(op, Receipt) else None
        # Submitted in the same turn of the loop: the request joins the result's flush.
        leased = out.submit(Lease(self.host, message.request)) if message.request else None
        receipt = op if recorded is None else await recorded
        tasks = await leased if leased is not None else None
        if isinstance(receipt, Receipt) and receipt.accepted and not isinstance(tasks, Failed):
            await self.send_json(
                protocol.ack("result", message.replica, None, self._assigned(tasks))
            )
            return
        await self._answer(receipt, "result", message.replica)
        if leased is not None:
            await self._assign(tasks)

    def _assigned(self, tasks: list | None) -> dict[str, Any] | None:
        if tasks is None:
            return None
        retry = None if tasks else settings.PROTOCOL["RETRY_AFTER_SECONDS"]
        return protocol.assign(tasks, retry)

    async def _assign(self, tasks: list | Failed) -> None:
        if isinstance(tasks, Failed):
            await self.send_json(protocol.error(Code.SERVER_ERROR, FAILED_MESSAGE))
            return
        await self.send_json(self._assigned(tasks))

    async def _answer(self, receipt: Receipt | Failed, of: str, replica: int) -> None:
        if isinstance(receipt, Failed):
            # Nothing of it was stored. Named or not, the host resends what was not
            # acknowledged; clients take an error naming a replica as final, so none is named.
            await self.send_json(protocol.error(Code.SERVER_ERROR, FAILED_MESSAGE))
            return
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
            await self.shut(Close.UNSUPPORTED_VERSION)
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
            await self.shut(CLOSE_FOR[e.reason])
            return
        if self.closed:
            return
        self.session = session
        self.host = HostRef.of(session.host, session.project_ids)
        self.host_total = session.host.total_credit
        self.user_total = session.user_total
        self.last_touch = time.monotonic()
        self.hub.join(self, session.host.id, session.host.user_id)
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
                user_total=self.user_total,
            )
        )

    def _touch(self) -> None:
        now = time.monotonic()
        if now - self.last_touch > TOUCH_EVERY:
            self.last_touch = now
            # Last seen is a hint: the writer gathers them and nobody waits for it.
            writer.get().touch(self.host.id)

    # --- live events ------------------------------------------------------------------------

    def live(self, event: dict[str, Any]) -> None:
        """An event from the hub; sent in order, without holding up the hub."""
        self.outbox.append(event)
        if len(self.outbox) == 1:
            self.hub.loop.create_task(self._send_live())

    async def _send_live(self) -> None:
        while self.outbox:
            event = self.outbox[0]
            try:
                handler = getattr(self, event["type"].replace(".", "_"), None)
                if handler is not None and not self.closed:
                    await handler(event)
            finally:
                self.outbox.pop(0)

    async def compute_cancel(self, event: dict[str, Any]) -> None:
        await self.send_json(protocol.cancel(event["replicas"]))

    async def compute_credit(self, event: dict[str, Any]) -> None:
        """Credit to this host, or (with ``hosts``) to the volunteer, of which this host
        earned its share."""
        hosts = event.get("hosts")
        if hosts is None:
            earned = event["amount"]
        else:
            earned = sum((amount for host_id, amount in hosts if host_id == self.host.id), 0.0)
            if self.user_total is not None:
                self.user_total += event["amount"]
        self.host_total += earned
        await self.send_json(protocol.credit(earned, self.host_total, self.user_total))

    async def compute_membership(self, event: dict[str, Any]) -> None:
        await self.send_json(
            protocol.membership(event["project"], event["state"], event["no_more_work"])
        )

    async def compute_notice(self, event: dict[str, Any]) -> None:
        await self.send_json(protocol.notice(event["text"], event.get("level", "info")))
