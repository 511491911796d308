"""Data and read-backs of the social browser tests, run inside the platform's own database.

Like scenario.py, these run through ``manage.py shell -c`` with the server's environment
(``social_support.call``) and print one JSON line for the test to read.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from socialgrid.friends.friendships import friend_ids
from socialgrid.invites.models import Referral
from tests.browser.scenario import emit


def create_user(username: str, email: str, password: str) -> None:
    """A volunteer who can sign in with this username (or e-mail address) and password."""
    user = get_user_model().objects.create_user(username, email, password)
    emit({"id": user.pk, "username": user.get_username()})


def invite_report(inviter: str) -> None:
    """The inviter's referrals (who, counted when) and each side's friends, by username."""
    users = get_user_model().objects
    user = users.get(username=inviter)
    referrals = Referral.objects.filter(inviter=user).select_related("recruit").order_by("id")

    def friends_of(someone) -> list[str]:
        return sorted(users.filter(pk__in=friend_ids(someone)).values_list("username", flat=True))

    emit(
        {
            "referrals": [
                {
                    "recruit": r.recruit.get_username(),
                    "counted_at": r.counted_at,
                    "recruit_friends": friends_of(r.recruit),
                }
                for r in referrals
            ],
            "friends": friends_of(user),
        }
    )


def invite_link(inviter: str, project: str) -> None:
    """The path of the inviter's invite link to a project."""
    from compute.models import Project
    from socialgrid.invites.codes import get_invite_code

    user = get_user_model().objects.get(username=inviter)
    emit({"path": get_invite_code(user, Project.objects.get(slug=project)).get_absolute_url()})
