"""Team challenges: a founder invites other teams to race for credit in a time window."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from socialgrid.feed.models import Verb
from socialgrid.feed.publishing import publish
from socialgrid.teams.membership import TeamError, is_banned
from socialgrid.teams.models import Challenge, Team, TeamCredit
from socialgrid.teams.slugs import unique_slug

MAX_TEAMS = 20
MAX_DURATION = timedelta(days=92)
# A form filled in at 10:00 for "now" arrives a little later; allow that much of a past start.
START_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class Standing:
    rank: int
    team: Team
    credit: float


def founded_team(user) -> Team | None:
    """The team ``user`` founded and is in: the one whose challenges they may start."""
    if not user.is_authenticated:
        return None
    return Team.objects.filter(founder_id=user.pk, members__user_id=user.pk).first()


def parse_slugs(text: str) -> list[str]:
    """Team slugs typed into one field, separated by commas, spaces or new lines."""
    return [s for s in re.split(r"[\s,]+", text.strip().lower()) if s]


def create_challenge(
    by,
    *,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    team_slugs: Iterable[str],
    description: str = "",
    now: datetime | None = None,
) -> Challenge:
    """Start a challenge between the founder's team and the teams named by slug."""
    now = now or timezone.now()
    own = founded_team(by)
    if own is None:
        raise TeamError("Only the founder of a team can start a challenge.")
    if is_banned(by):
        raise TeamError("Banned accounts cannot start challenges.")
    name = name.strip()
    if not name:
        raise TeamError("Give the challenge a name.")
    if ends_at <= starts_at:
        raise TeamError("A challenge must end after it starts.")
    if starts_at < now - START_GRACE:
        raise TeamError("A challenge cannot start in the past.")
    if ends_at - starts_at > MAX_DURATION:
        raise TeamError(f"A challenge can last at most {MAX_DURATION.days} days.")
    slugs = set(team_slugs) - {own.slug}
    if not slugs:
        raise TeamError("Invite at least one other team.")
    if len(slugs) >= MAX_TEAMS:
        raise TeamError(f"A challenge can have at most {MAX_TEAMS} teams.")
    invited = list(Team.objects.filter(slug__in=slugs))
    unknown = sorted(slugs - {t.slug for t in invited})
    if unknown:
        raise TeamError("No team has the address " + ", ".join(unknown) + ".")
    with transaction.atomic():
        challenge = Challenge.objects.create(
            name=name,
            slug=unique_slug(Challenge, name, fallback="challenge", reserved={"new"}),
            description=description,
            created_by=by,
            starts_at=starts_at,
            ends_at=ends_at,
        )
        challenge.teams.set([own, *invited])
        publish(
            by,
            Verb.CHALLENGE,
            event="started",
            challenge_name=challenge.name,
            challenge_slug=challenge.slug,
            team_name=own.name,
            team_slug=own.slug,
        )
    return challenge


def challenge_standings(challenge: Challenge) -> list[Standing]:
    """Each team's credit granted inside [starts_at, ends_at), best first.

    Read from the team ledger (written with each grant), so standings are current without
    waiting for the fold; one range scan of the (team, granted_at) index per team.
    """
    teams = list(challenge.teams.all())
    sums = dict(
        TeamCredit.objects.filter(
            team__in=[t.id for t in teams],
            granted_at__gte=challenge.starts_at,
            granted_at__lt=challenge.ends_at,
        )
        .values("team_id")
        .annotate(total=Sum("amount"))
        .values_list("team_id", "total")
        .order_by()
    )
    ordered = sorted(teams, key=lambda t: (-sums.get(t.id, 0.0), t.name.lower()))
    return [Standing(i, t, sums.get(t.id, 0.0)) for i, t in enumerate(ordered, start=1)]
