"""The headless volunteer: the browser worker's side of the protocol (docs/protocol.md), with
the apps' Python references in place of their JavaScript kernels.

One event loop does everything. A reader task applies what the server says and wakes the
main loop, which sends what is due: reports of finished work, a request for more once the
replicas still to compute are down to half of two per worker, a heartbeat when nothing else
went out. The request rides on the last result sent (``result.request``, answered in its
ack) when there is one, and goes on its own otherwise. References run in a process pool
(``Workload``) and finish whether or not a connection is up; what the server has not
acknowledged is sent again after a reconnect, if ``welcome.resume`` still lists it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from compute.headless.host import (
    USER_AGENT,
    Identity,
    capabilities,
    load_identity,
    measure_fpops,
    save_identity,
)
from compute.headless.references import default_references, describe
from compute.headless.summary import Summary
from compute.headless.workload import Workload
from compute.ratelimit import TokenBucket

log = logging.getLogger(__name__)

VERSION = 1
# Close codes after which connecting again cannot help (docs/protocol.md, "Close codes").
FATAL_CLOSES = {
    4000: "the server does not speak protocol version 1 (close 4000)",
    4001: "the server wants a signed-in user or a project (close 4001)",
    4003: "this host or its user is banned (close 4003)",
    4004: "unknown or inactive project (close 4004)",
}
# Until welcome says otherwise: the documented defaults.
DEFAULT_LIMITS = {
    "max_message_bytes": 1024 * 1024 + 4096,
    "messages_per_second": 20.0,
    "max_in_flight": 2,
    "heartbeat_seconds": 30.0,
}
WELCOME_TIMEOUT = 30.0
STOP_GRACE = 3.0  # a stopping session closes at once, unless stuck connecting or closing
REQUEST_TIMEOUT = 30.0  # no answer for this long: the request was lost, ask again
RESEND_AFTER = 2.0  # after rate_limited/server_error, resend what may have been dropped
DEFAULT_RETRY = 10.0
MAX_REQUEST = 64
MAX_FRAME = 64 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Refused(Exception):
    """The server will not have this volunteer; trying again cannot help."""


def _rate_limit(messages_per_second: float) -> TokenBucket:
    """Keeps under the server's message rate limit, which answers excess with errors."""
    return TokenBucket(max(0.8 * messages_per_second, 0.5), max(messages_per_second, 1.0))


def origin_for(url: str) -> str:
    """The Origin a page of the server at ``url`` would send (the server checks it)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"{url!r} is not a ws:// or wss:// URL")
    netloc = parts.netloc.rpartition("@")[2]
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{netloc}"


class HeadlessVolunteer:
    """One anonymous volunteer host computing for ``project`` with ``workers`` processes.

    ``await run()`` connects, computes until a stop condition (``max_tasks`` tasks reported,
    ``until_idle`` seconds holding no work, ``stop()``, or a close code that forbids
    retrying) and returns the ``Summary``. ``references`` maps app names to dotted paths of
    ``run(input) -> output`` functions, on top of the example apps'. The host id and token
    are kept in ``state_path`` when one is given."""

    def __init__(
        self,
        url: str,
        project: str,
        *,
        workers: int = 1,
        state_path: Path | str | None = None,
        references: dict[str, str] | None = None,
        max_tasks: int | None = None,
        until_idle: float | None = None,
        cpu_time_scale: float = 1.0,
        benchmark_fpops: float | None = None,
        backoff: tuple[float, float] = (1.0, 30.0),
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.origin = origin_for(url)
        self.project = project
        self.workers = max(1, workers)
        self.state_path = Path(state_path) if state_path else None
        self.max_tasks = max_tasks
        self.until_idle = until_idle
        self.benchmark_fpops = benchmark_fpops
        self.backoff = backoff
        self.rng = rng or random.Random()
        self.identity = load_identity(self.state_path)
        self.summary = Summary()
        self.sent: Counter[str] = Counter()
        self.work = Workload(
            self.workers,
            default_references(references),
            cpu_time_scale=cpu_time_scale,
            on_change=self._poke,
        )
        self._limits: dict[str, float] = dict(DEFAULT_LIMITS)
        self._bucket = _rate_limit(DEFAULT_LIMITS["messages_per_second"])
        self._wake: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self._stop_reason: str | None = None
        self._welcomed = False
        self._ever_welcomed = False
        self._connect_error = ""
        self._request_sent: float | None = None
        self._next_request = 0.0
        self._suspect: float | None = None
        self._last_sent = 0.0
        self._idle_since = time.monotonic()

    def stop(self, reason: str = "interrupted") -> None:
        """Stop at once, sending nothing more. Held replicas stay leased to this host until
        their deadline: a restart with the same state file resumes them."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self.summary.stopped = reason
        if self._stopped is not None:
            self._stopped.set()
        self._poke()

    async def run(self) -> Summary:
        started = time.monotonic()
        self._wake, self._stopped = asyncio.Event(), asyncio.Event()
        if self._stop_reason is not None:
            self._stopped.set()
        self._idle_since = started
        if self.benchmark_fpops is None:
            self.benchmark_fpops = measure_fpops()
        main = asyncio.create_task(self._connect_loop())
        stopping = asyncio.create_task(self._stopped.wait())
        try:
            await asyncio.wait({main, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not main.done():
                # Stopped from outside: the session ends by itself at its next turn, but a
                # connection attempt, a wait for welcome or a closing handshake may hang on
                # an unresponsive server, and Ctrl-C should not wait for that.
                await asyncio.wait({main}, timeout=STOP_GRACE)
            if not main.done():
                main.cancel()
                await asyncio.wait({main})
            if not main.cancelled():
                main.result()  # a crash in the loop is the caller's to see
        finally:
            main.cancel()
            stopping.cancel()
            self.work.close()
            self.summary.wall_time = time.monotonic() - started
        return self.summary

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # --- connections -------------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        attempt = 0
        host = urlsplit(self.url).hostname or ""
        while self._stop_reason is None:
            self._welcomed = False
            try:
                async with connect(
                    self.url,
                    origin=self.origin,
                    user_agent_header=USER_AGENT,
                    # Proxy settings in the environment are for the outside world; a proxy
                    # cannot reach a server on this machine.
                    proxy=None if host in LOOPBACK else True,
                    open_timeout=10,
                    close_timeout=2,
                    max_size=MAX_FRAME,
                ) as ws:
                    await self._session(ws)
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                if code in FATAL_CLOSES:
                    self._fail(FATAL_CLOSES[code])
                else:
                    log.warning("connection lost (close code %s)", code)
            except Refused as e:
                self._fail(str(e))
            except InvalidStatus as e:
                if e.response.status_code == 403:
                    # The Origin was refused; the server's ALLOWED_HOSTS will not change.
                    self._fail(f"the server refused origin {self.origin} (HTTP 403)")
                else:
                    self._connect_error = str(e)
                    log.warning("cannot connect to %s: %s", self.url, e)
            except (OSError, TimeoutError, WebSocketException) as e:
                self._connect_error = describe(e)
                log.warning("cannot connect to %s: %s", self.url, describe(e))
            finally:
                self._request_sent = None
            if self._stop_reason is not None:
                return
            # Backoff grows over failed attempts; a session that was welcomed starts it over.
            attempt = 1 if self._welcomed else attempt + 1
            base, cap = self.backoff
            delay = min(cap, base * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.5)
            log.info("reconnecting in %.1f s", delay)
            await self._pause(delay)

    def _fail(self, message: str) -> None:
        log.error("%s; stopping", message)
        self.summary.fatal = message
        self.stop("refused")

    async def _session(self, ws: ClientConnection) -> None:
        self._bucket = _rate_limit(DEFAULT_LIMITS["messages_per_second"])
        hello = {
            "type": "hello",
            "v": VERSION,
            "host": self.identity.host,
            "host_token": self.identity.host_token,
            "project": self.project,
            "capabilities": capabilities(self.workers, self.benchmark_fpops or 1e9),
        }
        await self._send(ws, "hello", json.dumps(hello))
        welcome = await asyncio.wait_for(self._welcome(ws), WELCOME_TIMEOUT)
        self._on_welcome(welcome)
        self._welcomed = self._ever_welcomed = True
        reader = asyncio.create_task(self._read(ws))
        try:
            while self._stop_reason is None:
                self._wake.clear()
                if reader.done():
                    reader.result()  # raises the ConnectionClosed error, if any
                    raise ws.close_exc  # a clean close: reconnect all the same
                self._check_exit()
                if self._stop_reason is not None:
                    break
                await self._pump(ws)
                await self._wait(self._next_timeout())
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await reader

    async def _welcome(self, ws: ClientConnection) -> dict[str, Any]:
        while True:
            message = _decode(await ws.recv())
            kind = message.get("type")
            if kind == "welcome":
                return message
            if kind == "notice":
                log.warning("server notice: %s", message.get("text"))
            elif kind == "error":
                raise Refused(f"the server refused hello: {message.get('message')}")

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                self._handle(_decode(text))
                self._poke()
        finally:
            self._poke()

    async def _send(self, ws: ClientConnection, kind: str, text: str) -> None:
        if not self._bucket.take():
            # Less than one token left (never less than none): in one interval there is one.
            await asyncio.sleep(1 / self._bucket.rate)
            self._bucket.take()
        await ws.send(text)
        self._last_sent = time.monotonic()
        self.sent[kind] += 1

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _pause(self, seconds: float) -> None:
        """Wait between connections; the work goes on and the exit conditions still hold."""
        deadline = time.monotonic() + seconds
        while self._stop_reason is None:
            self._wake.clear()
            self._check_exit()
            left = deadline - time.monotonic()
            if left <= 0 or self._stop_reason is not None:
                return
            await self._wait(min(left, 1.0))

    # --- what to send ------------------------------------------------------------------------

    async def _pump(self, ws: ClientConnection) -> None:
        now = time.monotonic()
        if self._suspect is not None and now >= self._suspect + RESEND_AFTER:
            # The server dropped a message without saying which: send again what went out
            # before that and is still unanswered (a duplicate is merely refused).
            for report in self.work.reports.values():
                if report.sent_at is not None and report.sent_at <= self._suspect:
                    report.sent_at = None
            if self._request_sent is not None and self._request_sent <= self._suspect:
                self._request_sent = None
            self._suspect = None
        if self._request_sent is not None and now - self._request_sent > REQUEST_TIMEOUT:
            self._request_sent = None
        reports = self.work.unsent()
        # The request rides on the last result: the server has the other reports by then, so
        # its count of the replicas this host holds is right.
        rider = next((r for r in reversed(reports) if r.kind == "result"), None)
        for report in reports:
            if report is not rider:
                report.sent_at = time.monotonic()
                await self._send(ws, report.kind, report.text)
        if rider is not None:
            rider.sent_at = time.monotonic()
            want = self._wanted() if self._request_due(rider.sent_at) else 0
            if want > 0:
                self._request_sent = rider.sent_at
                # The report's text stays as it is: sent again, it asks afresh or not at all.
                await self._send(ws, "result", f'{rider.text[:-1]},"request":{want}}}')
                self.sent["result.request"] += 1
            else:
                await self._send(ws, "result", rider.text)
        want = self._wanted()
        if want > 0 and self._request_due(time.monotonic()):
            self._request_sent = time.monotonic()
            await self._send(ws, "request", json.dumps({"type": "request", "n": want}))
        if time.monotonic() - self._last_sent >= self._limits["heartbeat_seconds"]:
            await self._send(ws, "heartbeat", '{"type":"heartbeat"}')

    def _request_due(self, now: float) -> bool:
        return self._request_sent is None and now >= self._next_request

    def _wanted(self) -> int:
        """How many more replicas to ask for: once those still to compute are down to half of
        one running and one waiting per worker, what they lack of that. Reported ones do not
        count: the server leaves a recorded replica out of the host's count in flight."""
        if self._stop_reason is not None:
            return 0
        target = min(2 * self.workers, int(self._limits["max_in_flight"]))
        to_compute = len(self.work.tasks)
        if to_compute > target // 2:
            return 0
        want = target - to_compute
        if self.max_tasks is not None:
            # Never lease work that this run will not do (reports not yet acknowledged will
            # count once they are).
            held = len(self.work.holding)
            want = min(want, self.max_tasks - self.summary.done - self.summary.errors - held)
        return max(0, min(want, MAX_REQUEST))

    def _next_timeout(self) -> float:
        now = time.monotonic()
        due = [now + 1.0, self._last_sent + self._limits["heartbeat_seconds"]]
        if self._request_sent is None and self._wanted() > 0:
            due.append(self._next_request)
        if self._suspect is not None:
            due.append(self._suspect + RESEND_AFTER)
        return max(0.01, min(due) - now)

    def _check_exit(self) -> None:
        if self._stop_reason is not None:
            return
        finished = self.summary.done + self.summary.errors
        if self.max_tasks is not None and finished >= self.max_tasks:
            self.stop(f"{finished} tasks reported, --max-tasks reached")
        elif (
            self.until_idle is not None
            and not self.work.holding
            and self._request_sent is None
            and time.monotonic() - self._idle_since >= self.until_idle
        ):
            if not self._ever_welcomed:
                # Idle because no server answered, not because there was no work.
                why = self._connect_error or "no welcome"
                self._fail(f"never connected to {self.url} in {self.until_idle:g} s ({why})")
            else:
                self.stop(f"no work for {self.until_idle:g} s")

    def _mark_activity(self) -> None:
        self._idle_since = time.monotonic()

    # --- what the server says ----------------------------------------------------------------

    def _on_welcome(self, welcome: dict[str, Any]) -> None:
        identity = Identity(welcome.get("host"), welcome.get("host_token"))
        if identity != self.identity:
            self.identity = identity
            save_identity(self.state_path, identity, url=self.url, project=self.project)
        limits = welcome.get("limits") or {}
        for key in DEFAULT_LIMITS:
            if isinstance(limits.get(key), int | float) and limits[key] > 0:
                self._limits[key] = limits[key]
        self.work.max_message_bytes = int(self._limits["max_message_bytes"])
        self._bucket = _rate_limit(self._limits["messages_per_second"])
        self.summary.host_total = float((welcome.get("credit") or {}).get("host_total") or 0.0)
        resume = {t.get("replica"): t for t in welcome.get("resume") or [] if isinstance(t, dict)}
        # What the server no longer lists was cancelled or timed out while we were away, or
        # (a report whose ack was lost) recorded: sending it again would only be refused.
        for replica in self.work.holding - set(resume):
            log.info("replica %s is no longer leased to this host; dropping it", replica)
            self.work.drop(replica)
        new = [t for r, t in resume.items() if r not in self.work.holding]
        self.summary.resumed += sum(self.work.accept(t) for t in new)
        if new:
            self._mark_activity()
        for report in self.work.reports.values():
            report.sent_at = None
        self._request_sent, self._next_request, self._suspect = None, 0.0, None
        log.info(
            "connected to %s as host %s: %d replicas resumed, %d reports to send",
            self.url,
            identity.host,
            len(new),
            len(self.work.reports),
        )

    def _handle(self, message: dict[str, Any]) -> None:
        handler = {
            "assign": self._on_assign,
            "ack": self._on_ack,
            "cancel": self._on_cancel,
            "credit": self._on_credit,
            "notice": self._on_notice,
            "error": self._on_error,
        }.get(message.get("type"))
        if handler is None:
            # heartbeat answers, and whatever a later protocol version adds
            log.debug("ignoring a %s message", message.get("type"))
            return
        handler(message)

    def _on_assign(self, message: dict[str, Any]) -> None:
        self._request_sent = None
        tasks = [t for t in message.get("tasks") or [] if isinstance(t, dict)]
        for task in tasks:
            self.work.accept(task)
        if tasks:
            self._mark_activity()
            return
        retry = message.get("retry_after")
        retry = retry if isinstance(retry, int | float) and retry > 0 else DEFAULT_RETRY
        self._next_request = time.monotonic() + retry

    def _on_ack(self, message: dict[str, Any]) -> None:
        if "tasks" in message:
            # A result that carried a request: its ack is the answer, as an assign would be.
            self._on_assign(message)
        of = message.get("of")
        if of in ("result", "error") and self.work.acknowledged(message.get("replica")):
            if of == "result":
                self.summary.done += 1
            else:
                self.summary.errors += 1
            self._mark_activity()

    def _on_cancel(self, message: dict[str, Any]) -> None:
        held = self.work.holding
        replicas = [r for r in message.get("replicas") or [] if r in held]
        for replica in replicas:
            self.work.drop(replica)
        if replicas:
            log.info("the server cancelled replicas %s", replicas)
            self.summary.cancelled += len(replicas)
            self._mark_activity()

    def _on_credit(self, message: dict[str, Any]) -> None:
        amount, total = message.get("amount"), message.get("host_total")
        if isinstance(amount, int | float):
            self.summary.credit += amount
        if isinstance(total, int | float):
            self.summary.host_total = float(total)
        log.debug("granted %s credit (host total %s)", amount, total)

    def _on_notice(self, message: dict[str, Any]) -> None:
        level = logging.WARNING if message.get("level") == "warning" else logging.INFO
        log.log(level, "server notice: %s", message.get("text"))

    def _on_error(self, message: dict[str, Any]) -> None:
        code, replica = message.get("code"), message.get("replica")
        about = f" (replica {replica})" if replica is not None else ""
        log.warning("server error %s: %s%s", code, message.get("message"), about)
        if code in ("rate_limited", "server_error"):
            self._suspect = time.monotonic()
        elif replica is not None and self.work.acknowledged(replica):
            self.summary.refused += 1
            self._mark_activity()


def _decode(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        return {}
    try:
        message = json.loads(text)
    except ValueError:
        log.warning("ignoring a frame that is not JSON")
        return {}
    return message if isinstance(message, dict) else {}
