"""Live events, sent after commit.

Events for volunteers' worker sockets (credit, cancellations, membership changes) go out a
batch at a time through :mod:`compute.dispatch.live`, addressed by host or by user. Pages
(a user's feed, a project's counters) listen on channel-layer groups: ``user_<id>`` and
``project_<id>``.
Events are best-effort: a volunteer who is not connected misses nothing durable, since
credit and cancellations are in the database and reach the host on its next request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from compute.dispatch import live

if TYPE_CHECKING:
    from compute.credit import Grant

log = logging.getLogger(__name__)

# The event loop of the ASGI server in this process. The in-memory channel layer (embedded
# mode) keeps asyncio queues bound to that loop, so events raised in other threads (the
# embedded beat) must be handed to it; the Redis layer needs no such care.
_server_loop: asyncio.AbstractEventLoop | None = None


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def user_group(user_id: int) -> str:
    return f"user_{user_id}"


def project_group(project_id: int) -> str:
    return f"project_{project_id}"


def send(group: str, message: dict) -> None:
    """Send an event to a group, from any thread, after the caller's commit."""
    _send(group, message)


def _send(group: str, message: dict) -> None:
    _send_many([(group, message)])


def _send_many(events: list[tuple[str, dict]]) -> None:
    """Send events to groups in one go: one event loop (and one Redis connection) for the
    lot, rather than one per event, which costs a connection each from a sync thread."""
    layer = get_channel_layer()
    if layer is None or not events:
        return

    async def send_all() -> None:
        for group, message in events:
            try:
                await layer.group_send(group, message)
            except Exception:
                # Live updates must never break the engine; the database holds the truth.
                log.warning("could not send %s to %s", message.get("type"), group, exc_info=True)

    try:
        loop = _server_loop
        if isinstance(layer, InMemoryChannelLayer) and loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(send_all(), loop).result(5)
        else:
            async_to_sync(send_all)()
    except Exception:
        log.warning("could not send %d live events", len(events), exc_info=True)


def replicas_cancelled(pairs: Iterable[tuple[int, int | None]]) -> None:
    """Tell hosts to stop work on replicas that are no longer needed."""
    per_host: dict[int, list[int]] = defaultdict(list)
    for replica_id, host_id in pairs:
        if host_id is not None:
            per_host[host_id].append(replica_id)
    live.publish(
        [
            ("host", host_id, {"type": "compute.cancel", "replicas": sorted(replica_ids)})
            for host_id, replica_ids in per_host.items()
        ]
    )


def credit_granted(grants: Iterable[Grant]) -> None:
    """A batch's credit, published together: one event per volunteer, reaching every socket
    of theirs (each adds the whole to the volunteer's total and its own host's share to the
    host's), and one per host nobody has claimed."""
    per_host: dict[int, float] = defaultdict(float)
    per_user: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for g in grants:
        if g.user_id is not None:
            per_user[g.user_id][g.host_id or 0] += g.amount
        elif g.host_id is not None:
            per_host[g.host_id] += g.amount
    live.publish(
        [
            ("host", host_id, {"type": "compute.credit", "amount": amount})
            for host_id, amount in per_host.items()
        ]
        + [
            (
                "user",
                user_id,
                {
                    "type": "compute.credit",
                    "amount": sum(hosts.values()),
                    "hosts": [[host_id, amount] for host_id, amount in hosts.items()],
                },
            )
            for user_id, hosts in per_user.items()
        ]
    )


def project_stats(project_id: int, stats: dict) -> None:
    _send(project_group(project_id), {"type": "project.stats", "stats": stats})


def membership_changed(user_id: int, project_slug: str, state: str, no_more_work: bool) -> None:
    """Tell the volunteer's connected hosts to pause, finish or stop work for a project."""
    live.publish(
        [
            (
                "user",
                user_id,
                {
                    "type": "compute.membership",
                    "project": project_slug,
                    "state": state,
                    "no_more_work": no_more_work,
                },
            )
        ]
    )
