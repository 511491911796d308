"""What /friends/ shows: four queries whatever the number of friends and requests."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F

from socialgrid.friends.friendships import friend_ids
from socialgrid.friends.models import FriendRequest, RequestState


@dataclass(frozen=True)
class FriendRow:
    user: AbstractBaseUser
    name: str
    total_credit: float
    rac: float


@dataclass(frozen=True)
class FriendsPage:
    friends: list[FriendRow]
    incoming: list[FriendRequest]
    outgoing: list[FriendRequest]


def friends_page(user: AbstractBaseUser) -> FriendsPage:
    ids = friend_ids(user)
    users = (
        get_user_model()
        .objects.filter(pk__in=ids)
        .select_related("profile", "volunteer")
        # Most credit first; friends who never computed (no Volunteer row) last.
        .order_by(F("volunteer__total_credit").desc(nulls_last=True), "pk")
        if ids
        else []
    )
    rows = []
    for friend in users:
        volunteer = getattr(friend, "volunteer", None)
        rows.append(
            FriendRow(
                user=friend,
                name=friend.profile.public_name,
                total_credit=volunteer.total_credit if volunteer else 0.0,
                rac=volunteer.rac if volunteer else 0.0,
            )
        )
    pending = FriendRequest.objects.filter(state=RequestState.PENDING).order_by("-created_at")
    return FriendsPage(
        friends=rows,
        incoming=list(pending.filter(to_user=user).select_related("from_user__profile")),
        outgoing=list(pending.filter(from_user=user).select_related("to_user__profile")),
    )
