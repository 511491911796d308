from __future__ import annotations

import math
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

import pytest

from compute import credit
from compute.models import CreditEntry
from socialgrid.teams.credit import decay_team_credit, fold_team_credit
from socialgrid.teams.membership import join_team, quit_team
from socialgrid.teams.models import Team, TeamCredit, TeamMember


def grant(user, replica_id: int, amount: float, project, now=None):
    now = now or timezone.now()
    g = credit.Grant(replica_id, replica_id, project.id, None, user.pk, amount, now)
    with transaction.atomic():
        return credit.grant([g], now)


def test_credit_earned_by_a_member_goes_to_their_team_in_the_granting_transaction(
    team_factory, user_factory, earn
):
    team = team_factory()
    member, loner = team.founder, user_factory()
    granted = earn(member, loner)
    (row,) = TeamCredit.objects.all()
    assert row.team == team
    assert row.user == member
    assert row.amount == pytest.approx(granted[member.pk])
    assert row.amount > 0
    assert row.replica_id == CreditEntry.objects.get(user=member).replica_id
    assert not row.folded


def test_team_credit_counts_only_what_was_earned_while_a_member(team_factory, user_factory, earn):
    team = team_factory()
    volunteer = user_factory()
    earn(volunteer)  # before joining: stays with the volunteer only
    join_team(volunteer, team)
    during = earn(volunteer)[volunteer.pk]
    quit_team(volunteer, team)
    earn(volunteer)  # after leaving
    assert CreditEntry.objects.filter(user=volunteer).count() == 3
    assert list(TeamCredit.objects.values_list("team_id", "amount")) == [
        (team.id, pytest.approx(during))
    ]
    fold_team_credit()
    team.refresh_from_db()
    assert team.total_credit == pytest.approx(during)


def test_credit_follows_a_volunteer_who_moves_to_another_team(team_factory, user_factory, earn):
    first, second = team_factory(), team_factory()
    volunteer = user_factory()
    join_team(volunteer, first)
    a = earn(volunteer)[volunteer.pk]
    join_team(volunteer, second)
    b = earn(volunteer)[volunteer.pk]
    totals = dict(TeamCredit.objects.values_list("team_id", "amount"))
    assert totals == {first.id: pytest.approx(a), second.id: pytest.approx(b)}


def test_a_second_grant_for_the_same_replica_adds_nothing(team_factory, project_factory):
    team = team_factory()
    project = project_factory()
    assert grant(team.founder, 7, 5.0, project)
    assert grant(team.founder, 7, 5.0, project) == []
    assert TeamCredit.objects.count() == 1
    assert fold_team_credit() == 1
    assert fold_team_credit() == 0
    team.refresh_from_db()
    assert team.total_credit == 5.0


def test_a_replayed_signal_adds_nothing(team_factory, project_factory):
    from compute.signals import credit_granted

    team = team_factory()
    project = project_factory()
    now = timezone.now()
    g = credit.Grant(9, 9, project.id, None, team.founder.pk, 3.0, now)
    with transaction.atomic():
        credit.grant([g], now)
        credit_granted.send(sender=credit.Grant, grants=[g], now=now)
    assert TeamCredit.objects.get().amount == 3.0


def test_anonymous_and_teamless_grants_write_no_team_credit(user_factory, project_factory):
    project = project_factory()
    now = timezone.now()
    with transaction.atomic():
        credit.grant([credit.Grant(1, 1, project.id, None, None, 2.0, now)], now)
    grant(user_factory(), 2, 2.0, project)
    assert not TeamCredit.objects.exists()
    assert CreditEntry.objects.count() == 2


def test_a_banned_members_credit_counts_for_no_team(
    team_factory, user_factory, project_factory, ban
):
    team = team_factory()
    member = user_factory()
    join_team(member, team)
    ban(member)
    grant(member, 1, 4.0, project_factory())
    assert not TeamCredit.objects.exists()


def test_the_fold_adds_team_credit_to_teams_and_their_current_members(
    team_factory, user_factory, project_factory
):
    project = project_factory()
    red, blue = team_factory(), team_factory()
    ann, bob = user_factory(), user_factory()
    join_team(ann, red)
    join_team(bob, red)
    grant(ann, 1, 2.0, project)
    grant(ann, 2, 3.0, project)
    grant(bob, 3, 1.0, project)
    grant(blue.founder, 4, 10.0, project)
    quit_team(bob, red)  # his credit stays with the team, not with a later membership
    join_team(bob, red)
    now = time.time()
    assert fold_team_credit(now=now) == 4
    red.refresh_from_db()
    blue.refresh_from_db()
    assert red.total_credit == 6.0
    assert blue.total_credit == 10.0
    assert red.rac > 0
    assert red.rac_time == now
    assert not math.isnan(red.rac)
    assert TeamMember.objects.get(user=ann).credit == 5.0
    assert TeamMember.objects.get(user=bob).credit == 0.0
    assert not TeamCredit.objects.filter(folded=False).exists()


def test_the_fold_follows_the_rac_formula_of_projects(team_factory, project_factory):
    team = team_factory()
    project = project_factory()
    Team.objects.filter(id=team.id).update(rac=100.0, rac_time=1_000_000.0, total_credit=50.0)
    grant(team.founder, 1, 7.0, project)
    later = 1_000_000.0 + 3600
    fold_team_credit(now=later)
    team.refresh_from_db()
    expected = credit.update_average(100.0, 1_000_000.0, 7.0, later, later)
    assert (team.rac, team.rac_time) == pytest.approx(expected)
    assert team.total_credit == 57.0


def test_a_teams_first_credit_starts_its_average_at_the_first_grant(team_factory, project_factory):
    team = team_factory()
    project = project_factory()
    first = timezone.now() - timedelta(hours=6)
    grant(team.founder, 1, 30.0, project, now=first)
    grant(team.founder, 2, 30.0, project, now=first + timedelta(hours=3))
    now = first.timestamp() + 6 * 3600
    fold_team_credit(now=now)
    team.refresh_from_db()
    # 60 credits over the last 6 hours, averaged the BOINC way (a rate per day, decayed).
    assert team.rac == pytest.approx(
        credit.update_average(0.0, first.timestamp(), 60.0, now, now)[0]
    )
    assert 0 < team.rac < 60.0 * 4
    assert team.rac_time == now


def test_credit_folded_seconds_after_it_was_granted_does_not_inflate_a_new_teams_rac(
    team_factory, project_factory
):
    team = team_factory()
    grant(team.founder, 1, 100.0, project_factory())
    fold_team_credit()
    team.refresh_from_db()
    assert 0 < team.rac <= 100.0


def test_the_fold_works_in_batches(team_factory, project_factory):
    team = team_factory()
    project = project_factory()
    for i in range(5):
        grant(team.founder, i, 1.0, project)
    assert fold_team_credit(limit=2) == 2
    assert fold_team_credit(limit=2) == 2
    assert fold_team_credit(limit=2) == 1
    team.refresh_from_db()
    assert team.total_credit == 5.0


def test_decay_halves_the_rac_of_a_team_idle_for_a_week_and_spares_busy_ones(team_factory):
    now = time.time()
    idle, busy, new = team_factory(), team_factory(), team_factory()
    Team.objects.filter(id=idle.id).update(rac=100.0, rac_time=now - 7 * 86400)
    Team.objects.filter(id=busy.id).update(rac=100.0, rac_time=now - 60)
    assert decay_team_credit(now) == 1
    idle.refresh_from_db()
    busy.refresh_from_db()
    new.refresh_from_db()
    assert idle.rac == pytest.approx(50.0, rel=1e-6)
    assert idle.rac_time == pytest.approx(now)
    assert busy.rac == 100.0
    assert (new.rac, new.rac_time) == (0.0, 0.0)


def test_the_sweep_tasks_are_registered_and_fold_and_decay(team_factory, project_factory):
    from socialgrid.celery import app

    team = team_factory()
    grant(team.founder, 1, 2.0, project_factory())
    # As celery beat (or the embedded beat) runs them: by name.
    assert app.tasks["socialgrid.teams.tasks.sweep_team_credit"].apply(throw=True).get() == 1
    Team.objects.filter(id=team.id).update(rac_time=time.time() - 3 * 86400)
    assert app.tasks["socialgrid.teams.tasks.sweep_team_decay"].apply(throw=True).get() == 1
    team.refresh_from_db()
    assert team.total_credit == 2.0


def test_credit_granted_inside_a_challenge_window_is_dated_at_the_grant(
    team_factory, project_factory
):
    team = team_factory()
    when = timezone.now() - timedelta(days=3)
    grant(team.founder, 1, 2.0, project_factory(), now=when)
    assert TeamCredit.objects.get().granted_at == when
