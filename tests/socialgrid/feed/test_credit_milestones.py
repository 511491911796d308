"""Credit milestone badges through the real grant path (compute.credit.grant inside the
granting transaction, which sends compute.signals.credit_granted)."""

from __future__ import annotations

import itertools

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import pytest

from compute import credit
from compute.models import Volunteer
from socialgrid.feed import badges
from socialgrid.feed.models import Badge, BadgeKind, FeedItem, Verb

_replica = itertools.count(1)


@pytest.fixture
def project(project_factory):
    return project_factory()


@pytest.fixture
def grant(project):
    """Grant ``amount`` to each host's owner in one transaction (one replica per host)."""

    def run(*pairs) -> list[credit.Grant]:
        now = timezone.now()
        grants = [
            credit.Grant(next(_replica), 1, project.id, host.id, host.user_id, amount, now)
            for host, amount in pairs
        ]
        with transaction.atomic():
            return credit.grant(grants, now)

    return run


def levels(user) -> list[int]:
    return sorted(
        Badge.objects.filter(user=user, kind=BadgeKind.CREDIT).values_list("level", flat=True)
    )


def milestones(user) -> list[dict]:
    return list(
        FeedItem.objects.filter(actor=user, verb=Verb.CREDIT_MILESTONE)
        .order_by("id")
        .values_list("data", flat=True)
    )


def test_a_first_grant_awards_every_rung_it_passes_and_announces_the_highest(
    grant, host_factory, project
):
    host = host_factory(project)
    grant((host, 12.5))
    assert levels(host.user) == [1, 10]
    assert milestones(host.user) == [{"credit": 10}]


def test_later_grants_award_only_the_new_rung(grant, host_factory, project):
    host = host_factory(project)
    grant((host, 12.5))
    grant((host, 50.0))
    assert levels(host.user) == [1, 10]
    grant((host, 40.0))  # 102.5 in total
    assert levels(host.user) == [1, 10, 100]
    assert milestones(host.user) == [{"credit": 10}, {"credit": 100}]


def test_below_the_first_rung_nothing_is_awarded(grant, host_factory, project):
    host = host_factory(project)
    grant((host, 0.4), (host, 0.5))
    assert levels(host.user) == []
    assert milestones(host.user) == []


def test_a_batch_checks_every_volunteer_in_it(grant, host_factory, project):
    a, b, anonymous = host_factory(project), host_factory(project), host_factory(user=None)
    grant((a, 1.0), (b, 1500.0), (anonymous, 5000.0))
    assert levels(a.user) == [1]
    assert levels(b.user) == [1, 10, 100, 1000]
    assert Badge.objects.count() == 5


def test_a_banned_volunteer_gets_no_milestones(grant, host_factory, project):
    host = host_factory(project)
    Volunteer.objects.create(user=host.user, banned=True)
    grant((host, 150.0))
    assert levels(host.user) == []


def test_a_missing_lower_rung_is_filled_in(grant, host_factory, project):
    host = host_factory(project)
    Badge.objects.create(user=host.user, kind=BadgeKind.CREDIT, level=100)
    grant((host, 120.0))
    assert levels(host.user) == [1, 10, 100]
    assert milestones(host.user) == [{"credit": 10}]


def test_the_badges_roll_back_with_the_grant(host_factory, project):
    host = host_factory(project)
    g = credit.Grant(next(_replica), 1, project.id, host.id, host.user_id, 20.0, timezone.now())
    with transaction.atomic():
        assert credit.grant([g], timezone.now()) == [g]
        transaction.set_rollback(True)  # as when a later step of the validation fails
    assert not Badge.objects.exists()
    assert not FeedItem.objects.filter(verb=Verb.CREDIT_MILESTONE).exists()


def test_checking_a_batch_with_nothing_new_is_one_query(grant, host_factory, project):
    hosts = [host_factory(project) for _ in range(5)]
    grant(*((h, 15.0) for h in hosts))
    with CaptureQueriesContext(connection) as queries:
        assert badges.award_credit_milestones({h.user_id for h in hosts}) == 0
    assert len(queries) == 1


def test_the_ladder_starts_small_for_browser_credit():
    assert badges.CREDIT_LADDER[:3] == (1, 10, 100)
    assert list(badges.CREDIT_LADDER) == sorted(badges.CREDIT_LADDER)
    assert badges.rungs_reached(badges.CREDIT_LADDER, 999.9) == [1, 10, 100]
