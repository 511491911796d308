from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

import pytest

from compute import credit
from socialgrid.feed.models import FeedItem, Verb
from socialgrid.teams.challenges import challenge_standings, create_challenge, parse_slugs
from socialgrid.teams.membership import TeamError, join_team
from socialgrid.teams.models import Challenge

HOUR = timedelta(hours=1)


def start(by, *teams, now=None, **kwargs):
    now = now or timezone.now()
    kwargs.setdefault("name", "Sprint")
    kwargs.setdefault("starts_at", now + HOUR)
    kwargs.setdefault("ends_at", now + 2 * HOUR)
    return create_challenge(by, team_slugs=[t.slug for t in teams], now=now, **kwargs)


def test_a_founder_challenges_other_teams_and_it_is_published(team_factory):
    red, blue, green = team_factory("Red"), team_factory("Blue"), team_factory("Green")
    challenge = start(red.founder, blue, green, description="Go!")
    assert set(challenge.teams.all()) == {red, blue, green}
    assert challenge.created_by == red.founder
    item = FeedItem.objects.get(actor=red.founder, verb=Verb.CHALLENGE)
    assert item.data == {
        "event": "started",
        "challenge_name": "Sprint",
        "challenge_slug": "sprint",
        "team_name": "Red",
        "team_slug": "red",
    }


def test_a_challenge_needs_another_team(team_factory):
    red = team_factory()
    with pytest.raises(TeamError, match="other team"):
        start(red.founder)
    with pytest.raises(TeamError, match="other team"):
        start(red.founder, red)
    assert not Challenge.objects.exists()


def test_unknown_teams_are_named(team_factory):
    red, blue = team_factory(), team_factory()
    with pytest.raises(TeamError, match="nope"):
        create_challenge(
            red.founder,
            name="x",
            starts_at=timezone.now() + HOUR,
            ends_at=timezone.now() + 2 * HOUR,
            team_slugs=[blue.slug, "nope"],
        )
    assert not Challenge.objects.exists()


def test_only_a_founder_starts_a_challenge(team_factory, user_factory):
    red, blue = team_factory(), team_factory()
    member = user_factory()
    join_team(member, red)
    with pytest.raises(TeamError, match="founder"):
        start(member, blue)
    with pytest.raises(TeamError, match="founder"):
        start(user_factory(), blue)


def test_a_challenge_ends_after_it_starts_and_not_in_the_past(team_factory):
    red, blue = team_factory(), team_factory()
    now = timezone.now()
    with pytest.raises(TeamError, match="end after"):
        start(red.founder, blue, now=now, starts_at=now + HOUR, ends_at=now + HOUR)
    with pytest.raises(TeamError, match="past"):
        start(red.founder, blue, now=now, starts_at=now - 2 * HOUR, ends_at=now + HOUR)
    with pytest.raises(TeamError, match="at most"):
        start(red.founder, blue, now=now, ends_at=now + timedelta(days=200))
    assert not Challenge.objects.exists()


def test_slugs_are_read_from_commas_spaces_and_lines():
    assert parse_slugs(" Red, blue\ngreen  ,, ") == ["red", "blue", "green"]


def test_standings_count_only_credit_granted_inside_the_window(
    team_factory, user_factory, project_factory
):
    project = project_factory()
    red, blue, idle = team_factory("Red"), team_factory("Blue"), team_factory("Idle")
    now = timezone.now()
    challenge = start(red.founder, blue, idle, now=now)
    s, e = challenge.starts_at, challenge.ends_at
    replica = iter(range(1, 100))

    def earn(user, amount, when):
        g = credit.Grant(next(replica), 1, project.id, None, user.pk, amount, when)
        with transaction.atomic():
            credit.grant([g], when)

    earn(red.founder, 100.0, s - timedelta(seconds=1))  # before
    earn(red.founder, 3.0, s)  # at the start: counts
    earn(red.founder, 4.0, e - timedelta(seconds=1))
    earn(red.founder, 100.0, e)  # at the end: does not
    earn(blue.founder, 10.0, s + HOUR / 2)
    earn(blue.founder, 100.0, e + HOUR)
    earn(user_factory(), 500.0, s + HOUR / 2)  # in no team
    standings = challenge_standings(challenge)
    assert [(st.rank, st.team.name, st.credit) for st in standings] == [
        (1, "Blue", 10.0),
        (2, "Red", 7.0),
        (3, "Idle", 0.0),
    ]


def test_standings_ignore_teams_outside_the_challenge(team_factory, project_factory):
    project = project_factory()
    red, blue, outsider = team_factory(), team_factory(), team_factory()
    now = timezone.now()
    challenge = start(red.founder, blue, now=now)
    when = challenge.starts_at + timedelta(minutes=5)
    g = credit.Grant(1, 1, project.id, None, outsider.founder.pk, 9.0, when)
    with transaction.atomic():
        credit.grant([g], when)
    assert {st.team for st in challenge_standings(challenge)} == {red, blue}
    assert all(st.credit == 0 for st in challenge_standings(challenge))


def test_status_follows_the_clock(team_factory):
    red, blue = team_factory(), team_factory()
    challenge = start(red.founder, blue)
    assert challenge.status() == "upcoming"
    assert challenge.status(challenge.starts_at) == "running"
    assert challenge.status(challenge.ends_at) == "finished"
