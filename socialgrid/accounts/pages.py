"""What a public profile page shows, and who may see it.

A named volunteer's page is found by username, an anonymous volunteer's by id only (so no
link or guess connects a username to an anonymous number). A banned or deactivated
volunteer's page exists only for themselves. The page costs three queries: the profile with
its user and credit, the memberships with their projects, the badges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from compute.credit import update_average
from compute.models import Membership, Volunteer
from socialgrid.accounts.models import Privacy, Profile
from socialgrid.feed.badges import badges_for
from socialgrid.feed.models import Badge

PROJECTS_SHOWN = 50

Viewer = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True)
class ProfilePage:
    profile: Profile
    total_credit: float
    rac: float
    memberships: list[Membership]
    badges: list[Badge]
    is_own: bool
    banned: bool


def _profiles() -> QuerySet[Profile]:
    return Profile.objects.select_related("user", "user__volunteer").filter(user__is_active=True)


def _volunteer(profile: Profile) -> Volunteer | None:
    try:
        return profile.user.volunteer
    except Volunteer.DoesNotExist:
        return None


def _is_own(profile: Profile, viewer: Viewer) -> bool:
    return viewer.is_authenticated and viewer.pk == profile.user_id


def _visible(profile: Profile | None, viewer: Viewer) -> Profile | None:
    if profile is None:
        return None
    if _is_own(profile, viewer):
        return profile
    volunteer = _volunteer(profile)
    if volunteer is not None and volunteer.banned:
        return None
    return profile


def find_named_profile(username: str, viewer: Viewer) -> Profile | None:
    """The profile at /u/<username>/: a named volunteer's, or your own whatever your choice."""
    profile = _profiles().filter(user__username=username).first()
    if profile is None:
        return None
    if profile.privacy == Privacy.ANONYMOUS and not _is_own(profile, viewer):
        return None
    return _visible(profile, viewer)


def find_anonymous_profile(user_id: int, viewer: Viewer) -> Profile | None:
    """The profile at /u/anonymous/<id>/: only volunteers who chose to be anonymous."""
    profile = _profiles().filter(user_id=user_id, privacy=Privacy.ANONYMOUS).first()
    return _visible(profile, viewer)


def current_rac(rac: float, rac_time: float, now: float) -> float:
    """RAC decayed to ``now``: the stored value is as of the last grant (or decay sweep)."""
    return update_average(rac, rac_time, 0.0, now, now)[0]


def profile_page(profile: Profile, viewer: Viewer, now: float | None = None) -> ProfilePage:
    now = now or time.time()
    volunteer = _volunteer(profile)
    memberships = list(
        Membership.objects.filter(user_id=profile.user_id, project__is_public=True)
        .select_related("project")
        .order_by("-total_credit", "project__name")[:PROJECTS_SHOWN]
    )
    badges = badges_for(profile.user)
    return ProfilePage(
        profile=profile,
        total_credit=volunteer.total_credit if volunteer else 0.0,
        rac=current_rac(volunteer.rac, volunteer.rac_time, now) if volunteer else 0.0,
        memberships=memberships,
        badges=badges,
        is_own=_is_own(profile, viewer),
        banned=bool(volunteer and volunteer.banned),
    )
