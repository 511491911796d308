from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

import pytest

from compute import credit
from socialgrid.leaderboards.models import DailyCredit, WeeklyCredit
from socialgrid.leaderboards.rollups import prune_period_credit, record_period_credit

WEDNESDAY = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)
MONDAY = date(2025, 1, 6)


def amounts(model, **filters) -> dict:
    return {
        (r.user_id, r.project_id): r.amount for r in model.objects.filter(**filters).order_by("id")
    }


def test_a_grant_adds_to_the_day_and_the_week_overall_and_in_its_project(
    grant_credit, user_factory, project_factory
):
    user, project = user_factory(), project_factory()
    assert grant_credit(user, project, 5.0, now=WEDNESDAY)
    assert amounts(DailyCredit, day=WEDNESDAY.date()) == {
        (user.id, None): 5.0,
        (user.id, project.id): 5.0,
    }
    assert amounts(WeeklyCredit, week=MONDAY) == {(user.id, None): 5.0, (user.id, project.id): 5.0}


def test_grants_add_up_per_day_and_per_week_and_projects_add_up_overall(
    grant_credit, user_factory, project_factory
):
    user, p1, p2 = user_factory(), project_factory(), project_factory()
    grant_credit(user, p1, 1.0, now=WEDNESDAY)
    grant_credit(user, p2, 2.0, now=WEDNESDAY)
    grant_credit(user, p1, 4.0, now=WEDNESDAY + timedelta(days=1))
    grant_credit(user, p1, 8.0, now=WEDNESDAY + timedelta(days=5))  # the next Monday
    assert amounts(DailyCredit, day=WEDNESDAY.date()) == {
        (user.id, None): 3.0,
        (user.id, p1.id): 1.0,
        (user.id, p2.id): 2.0,
    }
    assert amounts(WeeklyCredit, week=MONDAY) == {
        (user.id, None): 7.0,
        (user.id, p1.id): 5.0,
        (user.id, p2.id): 2.0,
    }
    assert amounts(WeeklyCredit, week=MONDAY + timedelta(days=7)) == {
        (user.id, None): 8.0,
        (user.id, p1.id): 8.0,
    }


def test_the_day_is_the_utc_day_of_the_grant(grant_credit, user_factory, project_factory):
    user, project = user_factory(), project_factory()
    late_evening_in_new_york = datetime(2025, 1, 9, 3, 30, tzinfo=UTC)
    grant_credit(user, project, 1.0, now=late_evening_in_new_york.astimezone())
    assert DailyCredit.objects.get(project=None).day == date(2025, 1, 9)


def test_a_replica_credited_twice_adds_to_the_rollups_once(
    grant_credit, user_factory, project_factory
):
    user, project = user_factory(), project_factory()
    assert grant_credit(user, project, 5.0, now=WEDNESDAY, replica_id=42)
    # The ledger refuses the second grant, so credit_granted is not sent for it.
    assert grant_credit(user, project, 5.0, now=WEDNESDAY, replica_id=42) == []
    assert amounts(DailyCredit) == {(user.id, None): 5.0, (user.id, project.id): 5.0}
    assert amounts(WeeklyCredit) == {(user.id, None): 5.0, (user.id, project.id): 5.0}


def test_one_batch_for_several_volunteers_writes_each_their_own_rows(
    db, user_factory, project_factory
):
    a, b, project = user_factory(), user_factory(), project_factory()
    grants = [
        credit.Grant(i, 1, project.id, None, user.id, amount, WEDNESDAY)
        for i, (user, amount) in enumerate([(a, 1.0), (b, 2.0), (a, 3.0)], start=1)
    ]
    with transaction.atomic():
        credit.grant(grants, WEDNESDAY)
    assert amounts(DailyCredit, project=None) == {(a.id, None): 4.0, (b.id, None): 2.0}


def test_credit_of_an_anonymous_host_is_not_rolled_up(grant_credit, host_factory, project_factory):
    project = project_factory()
    host = host_factory(project, user=None)
    assert grant_credit(None, project, 5.0, host=host, now=WEDNESDAY)
    assert not DailyCredit.objects.exists()


def test_a_failing_rollup_rolls_the_grant_back(
    grant_credit, user_factory, project_factory, monkeypatch
):
    from compute.models import CreditEntry
    from socialgrid.leaderboards import rollups

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(rollups, "add_credit", broken)
    with pytest.raises(RuntimeError):
        grant_credit(user_factory(), project_factory(), 5.0, now=WEDNESDAY)
    assert not CreditEntry.objects.exists()


def test_credit_validated_by_the_engine_is_rolled_up(project_factory, host_factory):
    from compute import submission, validation
    from compute.models import Replica, WorkUnit
    from compute.results import record_result
    from compute.scheduler import lease_replicas

    project = project_factory()
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="b")
    workunit = WorkUnit.objects.get()
    hosts = []
    for _ in range(2):
        host = host_factory(project)
        (a,) = lease_replicas(host, 1)
        Replica.objects.filter(id=a.replica_id).update(sent_at=a.deadline - timedelta(days=1))
        assert record_result(host, a.replica_id, a.lease_token, {"y": 9}, 10.0).accepted
        hosts.append(host)
    assert validation.validate_workunit(workunit.id).outcome == "valid"
    for host in hosts:
        granted = Replica.objects.get(host=host).granted_credit
        assert granted > 0
        row = DailyCredit.objects.get(user=host.user, project=project)
        assert row.amount == pytest.approx(granted)
        assert WeeklyCredit.objects.get(user=host.user, project=None).amount == pytest.approx(
            granted
        )


def test_pruning_deletes_only_rollups_past_their_retention(db, user_factory, project_factory):
    user, project = user_factory(), project_factory()
    today = date(2025, 3, 20)
    for project_id in (None, project.id):
        DailyCredit.objects.create(user=user, project_id=project_id, day=today, amount=1)
        DailyCredit.objects.create(
            user=user, project_id=project_id, day=today - timedelta(days=36), amount=1
        )
        WeeklyCredit.objects.create(user=user, project_id=project_id, week=today, amount=1)
        WeeklyCredit.objects.create(
            user=user, project_id=project_id, week=today - timedelta(weeks=13), amount=1
        )
    assert prune_period_credit(today, [project.id]) == 4
    assert set(DailyCredit.objects.values_list("day", flat=True)) == {today}
    assert set(WeeklyCredit.objects.values_list("week", flat=True)) == {today}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_grants_to_one_volunteer_add_up(user_factory, project_factory):
    """Several transactions create the same new roll-up rows at once: none is lost and
    none fails (the upsert waits on the first insert, then adds to it). The engine's row
    locks already serialise grants to one volunteer, so the receiver is called directly."""
    if connection.vendor != "postgresql":
        message = "concurrent writers need PostgreSQL, the integration level's database"
        if "integration" in os.environ.get("SOCIALGRID_REQUIRE", ""):
            pytest.fail(message)
        pytest.skip(message)
    user, project = user_factory(), project_factory()
    n = 6
    barrier = threading.Barrier(n)
    errors = []

    def worker(i: int) -> None:
        try:
            g = credit.Grant(10_000 + i, 1, project.id, None, user.id, 1.0, WEDNESDAY)
            with transaction.atomic():
                barrier.wait(timeout=10)
                record_period_credit(sender=credit.Grant, grants=[g], now=WEDNESDAY)
        except Exception as e:
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert amounts(DailyCredit) == {(user.id, None): n, (user.id, project.id): n}
    assert amounts(WeeklyCredit) == {(user.id, None): n, (user.id, project.id): n}
