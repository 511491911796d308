"""Locks that only PostgreSQL takes: run at the integration level (DATABASE_URL set)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

import pytest

from compute import credit
from socialgrid.teams.credit import fold_team_credit
from socialgrid.teams.membership import join_team
from socialgrid.teams.models import Team, TeamCredit

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    assert connection.vendor == "postgresql", "the integration level runs on PostgreSQL"


def in_thread(target: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_fold_skips_rows_another_fold_holds_and_counts_each_once(team_factory):
    team = team_factory()
    now = timezone.now()
    TeamCredit.objects.bulk_create(
        TeamCredit(replica_id=i, team=team, user=team.founder, amount=1.0, granted_at=now)
        for i in range(10)
    )
    held, release = threading.Event(), threading.Event()

    def other_fold() -> None:
        with transaction.atomic():
            list(TeamCredit.objects.filter(replica_id__lt=4).select_for_update())
            held.set()
            release.wait(10)

    thread = in_thread(other_fold)
    assert held.wait(10)
    assert fold_team_credit() == 6
    release.set()
    thread.join(10)
    assert fold_team_credit() == 4
    assert fold_team_credit() == 0
    team.refresh_from_db()
    assert team.total_credit == 10.0


def test_a_grant_during_a_move_credits_the_team_the_volunteer_moved_to(
    team_factory, user_factory, project_factory
):
    first, second = team_factory(), team_factory()
    volunteer = user_factory()
    join_team(volunteer, first)
    project = project_factory()
    moved, commit = threading.Event(), threading.Event()

    def move() -> None:
        with transaction.atomic():
            join_team(volunteer, Team.objects.get(id=second.id))
            moved.set()
            commit.wait(10)

    def validate() -> None:
        now = timezone.now()
        with transaction.atomic():
            credit.grant([credit.Grant(1, 1, project.id, None, volunteer.pk, 5.0, now)], now)

    mover = in_thread(move)
    assert moved.wait(10)
    validator = in_thread(validate)
    validator.join(0.5)
    assert validator.is_alive(), "the grant should wait for the move to commit"
    commit.set()
    mover.join(10)
    validator.join(10)
    assert list(TeamCredit.objects.values_list("team_id", "amount")) == [(second.id, 5.0)]


def test_joining_two_teams_at_once_leaves_the_volunteer_in_one(team_factory, user_factory):
    from socialgrid.teams.membership import TeamError, team_of

    first, second = team_factory(), team_factory()
    volunteer = user_factory()
    joined, commit = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def join_first() -> None:
        with transaction.atomic():
            join_team(volunteer, first)
            joined.set()
            commit.wait(10)

    def join_second() -> None:
        try:
            join_team(volunteer, second)
        except TeamError as e:
            errors.append(e)

    a = in_thread(join_first)
    assert joined.wait(10)
    b = in_thread(join_second)
    b.join(0.5)
    commit.set()
    a.join(10)
    b.join(10)
    assert len(errors) == 1
    assert "try again" in str(errors[0])
    assert team_of(volunteer) == first
