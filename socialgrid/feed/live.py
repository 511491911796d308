"""Live arrival: a committed feed item is pushed to the open feed pages of everyone who may
see it (the actor and, unless the item is about a project that is not public, their
friends), on their ``user_<id>`` groups as a ``feed.item`` event.

Best-effort like every live event: a page that is not open finds the item in the database.
"""

from __future__ import annotations

from compute import notify
from socialgrid.feed.models import FeedItem
from socialgrid.feed.sentences import render_items
from socialgrid.feed.timeline import audience_ids

EVENT = "feed.item"


def deliver_item(item_id: int) -> int:
    """Send item ``item_id`` to its audience's pages; returns how many groups were sent to."""
    item = FeedItem.objects.select_related("actor__profile", "project").filter(id=item_id).first()
    if item is None:  # deleted before the commit hook ran
        return 0
    audience = audience_ids(item)
    if not audience:
        return 0
    event = {"type": EVENT, "item": render_items([item])[0].as_json()}
    for user_id in audience:
        # compute.notify hands the send to the server's event loop when the in-memory layer
        # (embedded mode) is used from another thread, and never raises.
        notify.send(notify.user_group(user_id), event)
    return len(audience)
