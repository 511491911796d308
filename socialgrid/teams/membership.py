"""The team flows: create, join, quit, transfer founder, edit, remove a member.

Rules:

- A user is in at most one team (``TeamMember.user`` is unique); joining or creating a team
  leaves the current one.
- A founder with other members must make one of them founder before leaving. When the last
  member leaves, a team that never earned credit and is in no challenge is deleted (its name
  becomes free again); one with history is kept, empty and founderless, so its credit and
  challenge standings survive, and whoever joins it next becomes its founder.
- Banned volunteers cannot create or join teams (they may still leave).

Locks: teams first, in id order, then the user's member row; the credit fold and the credit
receiver take them in the same order, so the flows never deadlock with grants.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from compute.models import Volunteer
from socialgrid.feed.models import Verb
from socialgrid.feed.publishing import publish
from socialgrid.teams.models import RESERVED_SLUGS, Team, TeamMember
from socialgrid.teams.slugs import unique_slug


class TeamError(Exception):
    """A flow refused; the message tells the volunteer why, and nothing changed."""


CHANGED = "Your team changed while we were working on it; please try again."


def is_banned(user) -> bool:
    return Volunteer.objects.filter(user_id=user.pk, banned=True).exists()


def team_of(user) -> Team | None:
    """The team ``user`` is in, if any."""
    if not user.is_authenticated:
        return None
    member = TeamMember.objects.select_related("team").filter(user_id=user.pk).first()
    return member.team if member else None


def create_team(user, name: str, description: str = "", url: str = "") -> Team:
    """Found a team: ``user`` becomes its founder and only member, leaving their old team."""
    if is_banned(user):
        raise TeamError("Banned accounts cannot create teams.")
    team = Team(name=name.strip(), description=description, url=url, founder=user)
    team.slug = unique_slug(Team, team.name, fallback="team", reserved=RESERVED_SLUGS)
    _validate(team)
    with transaction.atomic():
        member, locked = _lock(user)
        old = locked[member.team_id] if member else None
        if old is not None:
            _check_can_leave(user, old)
        try:
            with transaction.atomic():
                team.save()
        except IntegrityError as e:  # a team of that name (or slug) appeared meanwhile
            raise TeamError("A team with this name already exists.") from e
        _place(user, member, team)
        if old is not None:
            _after_leaving(old)
            publish(user, Verb.LEFT_TEAM, **feed_data(old))
        publish(user, Verb.FOUNDED_TEAM, **feed_data(team))
    return team


def join_team(user, team: Team) -> None:
    """Make ``user`` a member of ``team``, quitting their current team."""
    if is_banned(user):
        raise TeamError("Banned accounts cannot join teams.")
    with transaction.atomic():
        member, locked = _lock(user, team.id)
        if team.id not in locked:
            raise TeamError("This team no longer exists.")
        team = locked[team.id]
        old = locked[member.team_id] if member else None
        if old is not None and old.id == team.id:
            raise TeamError(f"You are already a member of {team.name}.")
        if old is not None:
            _check_can_leave(user, old)
        _place(user, member, team)
        if team.founder_id is None:
            # An abandoned team belongs to whoever revives it.
            team.founder = user
            team.save(update_fields=["founder"])
        if old is not None:
            _after_leaving(old)
            publish(user, Verb.LEFT_TEAM, **feed_data(old))
        publish(user, Verb.JOINED_TEAM, **feed_data(team))


def quit_team(user, team: Team) -> None:
    """Leave ``team`` (the one the volunteer was looking at, so a stale page quits nothing)."""
    with transaction.atomic():
        member, locked = _lock(user)
        if member is None or member.team_id != team.id:
            raise TeamError(f"You are not a member of {team.name}.")
        team = locked[team.id]
        _check_can_leave(user, team)
        member.delete()
        _after_leaving(team)
        publish(user, Verb.LEFT_TEAM, **feed_data(team))


def transfer_founder(team: Team, by, to) -> None:
    """Hand the team to another current member; only its founder may."""
    with transaction.atomic():
        team = _lock_as_founder(team, by)
        if to.pk == by.pk:
            raise TeamError("You are already this team's founder.")
        # A member leaving locks this team first, so the check holds until we commit.
        if not TeamMember.objects.filter(team=team, user_id=to.pk).exists():
            raise TeamError("Only a current member can become the founder.")
        if is_banned(to):
            raise TeamError("A banned account cannot become a founder.")
        team.founder = to
        team.save(update_fields=["founder"])


def edit_team(team: Team, by, description: str, url: str) -> Team:
    """Change what the team says about itself; only its founder may."""
    with transaction.atomic():
        team = _lock_as_founder(team, by)
        team.description = description
        team.url = url
        _validate(team)
        team.save(update_fields=["description", "url"])
    return team


def remove_member(team: Team, by, member_user) -> None:
    """Take a member out of the team; only its founder may, and not themselves."""
    with transaction.atomic():
        team = _lock_as_founder(team, by)
        if member_user.pk == by.pk:
            raise TeamError("To leave your own team, make someone else founder and quit.")
        deleted, _ = TeamMember.objects.filter(team=team, user_id=member_user.pk).delete()
        if not deleted:
            raise TeamError("That volunteer is not a member of this team.")
        publish(member_user, Verb.LEFT_TEAM, **feed_data(team))


def feed_data(team: Team) -> dict[str, str]:
    """What the feed needs to show and link a team (kept even if the team is deleted)."""
    return {"team_name": team.name, "team_slug": team.slug}


def _validate(team: Team) -> None:
    # Forms validate first with per-field messages; this guards every other caller.
    try:
        team.full_clean(exclude=["founder"])
    except ValidationError as e:
        raise TeamError(" ".join(e.messages)) from e


def _lock(user, *team_ids: int) -> tuple[TeamMember | None, dict[int, Team]]:
    """Lock the given teams and the user's current team (id order), then the member row.

    The user may move between reading the row and locking it (a concurrent join in another
    tab); then the new team is locked too and the read repeated.
    """
    wanted = set(team_ids)
    locked: dict[int, Team] = {}
    for _ in range(3):
        current = TeamMember.objects.filter(user_id=user.pk).values_list("team_id", flat=True)
        wanted.update(current[:1])
        missing = wanted - locked.keys()
        for team in (
            Team.objects.select_for_update(no_key=True).filter(id__in=missing).order_by("id")
        ):
            locked[team.id] = team
        member = TeamMember.objects.select_for_update().filter(user_id=user.pk).first()
        if member is None or member.team_id in locked:
            return member, locked
    raise TeamError(CHANGED)


def _lock_as_founder(team: Team, by) -> Team:
    team = Team.objects.select_for_update(no_key=True).filter(id=team.id).first()
    if team is None:
        raise TeamError("This team no longer exists.")
    if team.founder_id is None or team.founder_id != by.pk:
        raise PermissionDenied("Only the team's founder can do that.")
    return team


def _check_can_leave(user, team: Team) -> None:
    if team.founder_id == user.pk and team.members.exclude(user_id=user.pk).exists():
        raise TeamError(
            f"You founded {team.name}: make another member its founder before you leave it."
        )


def _place(user, member: TeamMember | None, team: Team) -> None:
    # The row is moved rather than replaced, so a grant waiting on its lock reads the new team.
    if member is None:
        try:
            with transaction.atomic():
                TeamMember.objects.create(user=user, team=team)
        except IntegrityError as e:  # joined somewhere else in another tab meanwhile
            raise TeamError(CHANGED) from e
        return
    member.team = team
    member.joined_at = timezone.now()
    member.credit = 0.0
    member.save(update_fields=["team", "joined_at", "credit"])


def _after_leaving(team: Team) -> None:
    """Delete a team left empty unless it has history; then keep it, founderless."""
    if team.members.exists():
        return
    if team.total_credit > 0 or team.credits.exists() or team.challenges.exists():
        team.founder = None
        team.save(update_fields=["founder"])
    else:
        team.delete()
