"""How ranked volunteers, computers and teams are shown: one query per page of rows.

Volunteers appear by ``Profile.public_name`` (anonymous ones as "Anonymous volunteer #id");
a computer by its owner's public name and a short label — its name only when the owner is
named (a computer called "Ana's laptop" would unmask an anonymous Ana), else its number —
never its uuid, which identifies it to the server.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.urls import NoReverseMatch

from compute.models import Host
from socialgrid.accounts.models import Privacy, Profile
from socialgrid.leaderboards.boards import Subject
from socialgrid.leaderboards.database import team_model


@dataclass(frozen=True)
class Label:
    name: str
    detail: str = ""
    url: str = ""


def anonymous_name(user_id: int) -> str:
    # A profile is created with every user; should one be missing, show nothing personal.
    return Profile(user_id=user_id, privacy=Privacy.ANONYMOUS).public_name


def user_labels(user_ids: Collection[int]) -> dict[int, Label]:
    profiles = Profile.objects.filter(user_id__in=user_ids).select_related("user")
    labels = {p.user_id: Label(p.public_name) for p in profiles}
    return {i: labels.get(i) or Label(anonymous_name(i)) for i in user_ids}


def host_labels(host_ids: Collection[int]) -> dict[int, Label]:
    hosts = Host.objects.filter(id__in=host_ids).select_related("user__profile")
    labels = {}
    for host in hosts:
        profile = getattr(host.user, "profile", None) if host.user_id else None
        if host.user_id is None:
            owner, named = "Unclaimed computer", False
        elif profile is None:
            owner, named = anonymous_name(host.user_id), False
        else:
            owner, named = profile.public_name, not profile.is_anonymous_choice
        label = host.name if host.name and named else f"Computer #{host.id}"
        platform = host.platform_class if host.platform_class != "unknown" else ""
        labels[host.id] = Label(owner, " · ".join(p for p in (label, platform) if p))
    return labels


def team_labels(team_ids: Collection[int]) -> dict[int, Label]:
    team = team_model()
    if team is None:
        return {}
    labels = {}
    for t in team.objects.filter(id__in=team_ids).only("id", "name", "slug"):
        try:
            url = t.get_absolute_url()
        except (AttributeError, NoReverseMatch):
            url = ""
        labels[t.id] = Label(t.name, url=url)
    return labels


def labels_for(subject: str, ids: Collection[int]) -> dict[int, Label]:
    if not ids:
        return {}
    if subject == Subject.HOSTS:
        return host_labels(ids)
    if subject == Subject.TEAMS:
        return team_labels(ids)
    return user_labels(ids)
