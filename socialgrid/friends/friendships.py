"""Friendships and friend requests: the domain functions views and other apps call.

Other apps use :func:`friend_ids` (friends leaderboard, feed) and :func:`befriend` (a counted
recruit and their inviter become friends). Every state change of a request is a conditional
UPDATE on its pending state, so a double click or two tabs can never accept a request twice
or accept one that was just declined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from compute.models import Volunteer
from socialgrid.feed.models import Verb
from socialgrid.feed.publishing import publish
from socialgrid.friends.models import FriendRequest, Friendship, RequestState

# After a declined request, the sender may ask again only after this many days, so a
# declined request cannot be turned into a stream of notifications.
DEFAULT_DECLINE_COOLDOWN_DAYS = 30


class FriendshipError(Exception):
    """A refused action; the message is meant for the user."""


class Relation(StrEnum):
    """How one user stands to another, for the button a profile page shows."""

    SELF = "self"
    FRIENDS = "friends"
    REQUEST_SENT = "request_sent"
    REQUEST_RECEIVED = "request_received"
    NONE = "none"


@dataclass(frozen=True)
class SendOutcome:
    request: FriendRequest
    became_friends: bool  # True when it answered the other user's pending request


def _pair(a_id: int, b_id: int) -> tuple[int, int]:
    return (a_id, b_id) if a_id < b_id else (b_id, a_id)


def is_banned(user: AbstractBaseUser) -> bool:
    return Volunteer.objects.filter(user_id=user.pk, banned=True).exists()


def public_name(user: AbstractBaseUser) -> str:
    return user.profile.public_name


def friend_ids(user: AbstractBaseUser | int) -> set[int]:
    """The ids of ``user``'s friends (one query over the two indexed columns)."""
    user_id = user if isinstance(user, int) else user.pk
    rows = Friendship.objects.filter(Q(user_low_id=user_id) | Q(user_high_id=user_id)).values_list(
        "user_low_id", "user_high_id"
    )
    return {high if low == user_id else low for low, high in rows}


def are_friends(a: AbstractBaseUser, b: AbstractBaseUser) -> bool:
    if a.pk == b.pk:
        return False
    low, high = _pair(a.pk, b.pk)
    return Friendship.objects.filter(user_low_id=low, user_high_id=high).exists()


def befriend(a: AbstractBaseUser, b: AbstractBaseUser, now: datetime | None = None) -> bool:
    """Make ``a`` and ``b`` friends; returns whether they were not friends before.

    Pending requests between them are settled as accepted, so neither is left with a
    request to answer for a friendship that already exists. Publishes nothing: callers
    decide what the feed says (a recruit, an accepted request).
    """
    if a.pk == b.pk:
        return False
    low, high = _pair(a.pk, b.pk)
    try:
        with transaction.atomic():
            Friendship.objects.create(user_low_id=low, user_high_id=high)
    except IntegrityError:
        return False
    FriendRequest.objects.filter(
        Q(from_user_id=a.pk, to_user_id=b.pk) | Q(from_user_id=b.pk, to_user_id=a.pk),
        state=RequestState.PENDING,
    ).update(state=RequestState.ACCEPTED, responded_at=now or timezone.now())
    return True


def remove(user: AbstractBaseUser, other_id: int) -> bool:
    """End a friendship; returns whether there was one."""
    low, high = _pair(user.pk, other_id)
    deleted, _ = Friendship.objects.filter(user_low_id=low, user_high_id=high).delete()
    return deleted > 0


def relation(viewer: AbstractBaseUser, other: AbstractBaseUser) -> Relation:
    if viewer.pk == other.pk:
        return Relation.SELF
    if are_friends(viewer, other):
        return Relation.FRIENDS
    pending = (
        FriendRequest.objects.filter(
            Q(from_user_id=viewer.pk, to_user_id=other.pk)
            | Q(from_user_id=other.pk, to_user_id=viewer.pk),
            state=RequestState.PENDING,
        )
        .values_list("from_user_id", flat=True)
        .first()
    )
    if pending is None:
        return Relation.NONE
    return Relation.REQUEST_SENT if pending == viewer.pk else Relation.REQUEST_RECEIVED


def _cooldown() -> timedelta:
    days = getattr(settings, "FRIENDS_DECLINE_COOLDOWN_DAYS", DEFAULT_DECLINE_COOLDOWN_DAYS)
    return timedelta(days=days)


def send_request(
    from_user: AbstractBaseUser, to_user: AbstractBaseUser, now: datetime | None = None
) -> SendOutcome:
    """Ask ``to_user`` to be friends. A request to someone who already asked ``from_user``
    accepts theirs instead of crossing it."""
    now = now or timezone.now()
    if from_user.pk == to_user.pk:
        raise FriendshipError("You can't send a friend request to yourself.")
    if not to_user.is_active:
        raise FriendshipError("This account is closed.")
    if is_banned(from_user):
        raise FriendshipError("Your account can't send friend requests.")
    name = public_name(to_user)
    if are_friends(from_user, to_user):
        raise FriendshipError(f"You are already friends with {name}.")
    theirs = FriendRequest.objects.filter(
        from_user_id=to_user.pk, to_user_id=from_user.pk, state=RequestState.PENDING
    ).first()
    if theirs is not None:
        return SendOutcome(accept(from_user, theirs.pk, now), became_friends=True)
    if FriendRequest.objects.filter(
        from_user_id=from_user.pk,
        to_user_id=to_user.pk,
        state=RequestState.DECLINED,
        responded_at__gte=now - _cooldown(),
    ).exists():
        raise FriendshipError(f"{name} hasn't accepted your last request. Try again later.")
    try:
        with transaction.atomic():
            request = FriendRequest.objects.create(from_user=from_user, to_user=to_user)
    except IntegrityError:
        raise FriendshipError(f"You already sent {name} a friend request.") from None
    return SendOutcome(request, became_friends=False)


def _settle(user: AbstractBaseUser, request_id: int, state: str, now: datetime) -> FriendRequest:
    """Move a pending request addressed to ``user`` to ``state``, once."""
    changed = FriendRequest.objects.filter(
        pk=request_id, to_user_id=user.pk, state=RequestState.PENDING
    ).update(state=state, responded_at=now)
    if not changed:
        raise FriendshipError("This friend request is no longer waiting for an answer.")
    return FriendRequest.objects.select_related("from_user__profile", "to_user__profile").get(
        pk=request_id
    )


@transaction.atomic
def accept(user: AbstractBaseUser, request_id: int, now: datetime | None = None) -> FriendRequest:
    """Accept a request addressed to ``user``; both publish that they became friends."""
    now = now or timezone.now()
    request = _settle(user, request_id, RequestState.ACCEPTED, now)
    a, b = request.from_user, request.to_user
    if befriend(a, b, now):
        banned = set(
            Volunteer.objects.filter(user_id__in=[a.pk, b.pk], banned=True).values_list(
                "user_id", flat=True
            )
        )
        # Banned volunteers are left out of every feed (docs/social.md).
        for actor, friend in ((a, b), (b, a)):
            if actor.pk not in banned and friend.pk not in banned:
                # The id lets the feed show the friend's current name; the name is a fallback.
                publish(actor, Verb.BECAME_FRIENDS, friend_id=friend.pk, friend=public_name(friend))
    return request


def decline(user: AbstractBaseUser, request_id: int, now: datetime | None = None) -> FriendRequest:
    return _settle(user, request_id, RequestState.DECLINED, now or timezone.now())


def cancel(user: AbstractBaseUser, request_id: int) -> None:
    """Withdraw a pending request ``user`` sent."""
    deleted, _ = FriendRequest.objects.filter(
        pk=request_id, from_user_id=user.pk, state=RequestState.PENDING
    ).delete()
    if not deleted:
        raise FriendshipError("This friend request is no longer waiting for an answer.")
