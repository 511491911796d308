from __future__ import annotations

import math
import time

import pytest

from compute import credit
from compute.models import CreditEntry, Host, Project


def test_a_gigaflops_day_claims_two_hundred_credits():
    assert credit.claimed_credit(1e9, 86400) == pytest.approx(200.0)
    assert credit.claimed_credit(1e9, -5) == 0.0


def test_rac_halves_in_a_week_without_work():
    avg, t = credit.update_average(100.0, 1000.0, 0.0, 1000.0, 1000.0 + 7 * 86400)
    assert avg == pytest.approx(50.0)
    assert t == 1000.0 + 7 * 86400


def test_rac_of_steady_work_converges_to_the_daily_rate():
    avg, t = 0.0, 0.0
    now = 1_000_000.0
    for _ in range(24 * 60):  # 60 days of 100 credits every hour = 2400/day
        avg, t = credit.update_average(avg, t, 100.0, now - 3600, now)
        now += 3600
    assert avg == pytest.approx(2400.0, rel=0.01)


def test_decay_lowers_the_rac_of_the_inactive_only(db, project_factory):
    now = time.time()
    idle = Host.objects.create(rac=100.0, rac_time=now - 7 * 86400)
    busy = Host.objects.create(rac=100.0, rac_time=now - 60)
    assert credit.decay_credit(now) >= 1
    idle.refresh_from_db()
    busy.refresh_from_db()
    assert idle.rac == pytest.approx(50.0, rel=1e-6)
    assert idle.rac_time == pytest.approx(now)
    assert busy.rac == 100.0


def test_granting_twice_for_one_replica_credits_once(db, project_factory, host_factory):
    from django.db import transaction
    from django.utils import timezone

    project = project_factory()
    host = host_factory(project)
    g = credit.Grant(1, 1, project.id, host.id, host.user_id, 5.0, timezone.now())
    with transaction.atomic():
        assert credit.grant([g], timezone.now()) == [g]
    with transaction.atomic():
        assert credit.grant([g], timezone.now()) == []
    host.refresh_from_db()
    assert host.total_credit == 5.0
    assert host.user.volunteer.total_credit == 5.0
    assert host.user.memberships.get(project=project).total_credit == 5.0


def test_the_fold_adds_each_ledger_entry_to_its_project_once(db, project_factory):
    from django.utils import timezone

    project = project_factory()
    for i in range(3):
        CreditEntry.objects.create(
            replica_id=i, workunit_id=i, project=project, amount=2.0, granted_at=timezone.now()
        )
    assert credit.fold_project_credit() == 3
    assert credit.fold_project_credit() == 0
    project = Project.objects.get(id=project.id)
    assert project.total_credit == 6.0
    assert project.rac > 0
    assert not math.isnan(project.rac)


def test_a_first_grant_counts_as_a_day_of_work_not_a_burst():
    avg, _ = credit.update_average(0.0, 0.0, 5.0, 1000.0, 1010.0)
    assert avg == pytest.approx(5.0)
