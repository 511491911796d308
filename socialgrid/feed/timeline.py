"""Whose activity a volunteer sees: their own and their friends', newest first, one page at a
time, never a banned volunteer's.

Friends' items about a project that is not public are left out: naming it would reveal the
project to people it was not shown to. The actor always sees their own items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

from compute.models import Volunteer
from socialgrid.feed.models import FeedItem

PAGE_SIZE = 25
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(\d{1,18})-(\d{1,18})")


def friend_ids(user) -> set[int]:
    """Ids of ``user``'s friends, from socialgrid.friends.

    Imported lazily (the friends app imports the feed to publish); without it, or before it
    provides ``friend_ids``, everybody simply has no friends and sees their own items.
    """
    try:
        from socialgrid.friends.friendships import friend_ids as friends_of
    except ImportError:
        try:
            from socialgrid.friends import friend_ids as friends_of
        except ImportError:
            return set()
    return {int(i) for i in friends_of(user)}


def is_banned(user_id: int) -> bool:
    return Volunteer.objects.filter(user_id=user_id, banned=True).exists()


# Volunteers without a Volunteer row (no credit yet) are not banned; a LEFT JOIN keeps them.
NOT_BANNED = Q(actor__volunteer__isnull=True) | Q(actor__volunteer__banned=False)
SHOWABLE_TO_FRIENDS = Q(project__isnull=True) | Q(project__is_public=True)


def visible_to(viewer) -> QuerySet[FeedItem]:
    """Every item ``viewer`` may see in their feed, newest first."""
    friends = friend_ids(viewer) - {viewer.pk}
    who = Q(actor_id=viewer.pk)
    if friends:
        who |= Q(actor_id__in=friends) & SHOWABLE_TO_FRIENDS
    return (
        FeedItem.objects.filter(who)
        .filter(NOT_BANNED)
        .select_related("actor__profile", "project")
        .order_by("-created_at", "-id")
    )


def audience_ids(item: FeedItem) -> list[int]:
    """Who may see ``item``: the mirror image of visible_to (friendship is mutual)."""
    if is_banned(item.actor_id):
        return []
    audience = {item.actor_id}
    if item.project_id is None or item.project.is_public:
        audience |= friend_ids(item.actor)
    return sorted(audience)


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    """A position in the feed: items strictly older than (created_at, id)."""

    created_at: datetime
    id: int

    @classmethod
    def after(cls, item: FeedItem) -> Cursor:
        return cls(item.created_at, item.id)

    def encode(self) -> str:
        # Whole microseconds since the epoch, exact (no float rounding), then the id.
        micros = (self.created_at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}-{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        match = _CURSOR.fullmatch(text)
        if match is None:
            raise InvalidCursor(text)
        try:
            created_at = EPOCH + timedelta(microseconds=int(match[1]))
        except OverflowError as e:
            raise InvalidCursor(text) from e
        return cls(created_at, int(match[2]))


@dataclass(frozen=True)
class Page:
    items: list[FeedItem]
    older: Cursor | None


def feed_page(viewer, before: Cursor | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of ``viewer``'s feed, older than ``before``; ``older`` is where the next
    page starts, or None at the end."""
    items = visible_to(viewer)
    if before is not None:
        items = items.filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, id__lt=before.id)
        )
    # One extra row tells whether there is an older page without a COUNT.
    rows = list(items[: size + 1])
    older = Cursor.after(rows[size - 1]) if len(rows) > size else None
    return Page(rows[:size], older)
