"""A recruit counts once they return valid work: the credit_granted signal."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

import pytest

from compute import credit, submission
from compute.models import Replica, Volunteer
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.validation import validate_pending
from socialgrid.feed.models import Badge, FeedItem
from socialgrid.friends.friendships import are_friends
from socialgrid.invites.models import Referral
from socialgrid.invites.referrals import count_recruits

_replica_ids = itertools.count(1)


def grant(project, *users, amount=1.0):
    """Grant credit to ``users`` the way the validator does: inside a transaction."""
    now = timezone.now()
    grants = [
        credit.Grant(next(_replica_ids), 1, project.id, None, u.pk, amount, now) for u in users
    ]
    with transaction.atomic():
        return credit.grant(grants, now)


@pytest.fixture
def project(project_factory):
    return project_factory(name="Primes")


@pytest.fixture
def inviter(user_factory):
    return user_factory(username="ada")


def recruit_of(inviter, user_factory, name="newbie", **kwargs):
    user = user_factory(username=name)
    user.profile.display_name = name.title()
    user.profile.save()
    Referral.objects.create(recruit=user, inviter=inviter, **kwargs)
    return user


def test_a_recruit_counts_only_once_credit_is_granted(project, inviter, user_factory):
    recruit = recruit_of(inviter, user_factory, project=project)
    assert Referral.objects.get().counted_at is None
    assert not are_friends(inviter, recruit)
    grant(project, recruit)
    referral = Referral.objects.get()
    assert referral.counted_at is not None
    assert are_friends(inviter, recruit)
    (item,) = FeedItem.objects.filter(verb="recruited")
    assert (item.actor, item.data, item.project) == (
        inviter,
        {"recruit_id": recruit.pk, "recruit": "Newbie"},
        project,
    )
    # Other apps may award their own badges on a grant; the recruiter badge is ours.
    assert list(Badge.objects.filter(kind="recruits").values_list("user", "level")) == [
        (inviter.pk, 1)
    ]


def test_a_recruit_counts_once_however_much_work_they_return(project, inviter, user_factory):
    recruit = recruit_of(inviter, user_factory)
    grant(project, recruit)
    first = Referral.objects.get().counted_at
    grant(project, recruit)
    grant(project, recruit, recruit)
    assert Referral.objects.get().counted_at == first
    assert FeedItem.objects.filter(verb="recruited").count() == 1


def test_count_recruits_is_conditional(project, inviter, user_factory):
    recruit = recruit_of(inviter, user_factory)
    now = timezone.now()
    assert len(count_recruits([recruit.pk], now)) == 1
    assert count_recruits([recruit.pk], now + timedelta(seconds=1)) == []


def test_credit_for_others_counts_nobody(project, inviter, user_factory):
    recruit_of(inviter, user_factory)
    grant(project, user_factory(), inviter)
    assert Referral.objects.get().counted_at is None
    assert not FeedItem.objects.filter(verb="recruited").exists()


def test_recruiter_badges_at_1_5_10_25_50(project, inviter, user_factory):
    levels_after = {}
    for n in range(1, 51):
        grant(project, recruit_of(inviter, user_factory, name=f"r{n}"))
        levels_after[n] = sorted(
            Badge.objects.filter(user=inviter, kind="recruits").values_list("level", flat=True)
        )
    assert levels_after[1] == [1]
    assert levels_after[4] == [1]
    assert levels_after[5] == [1, 5]
    assert levels_after[9] == [1, 5]
    assert levels_after[10] == [1, 5, 10]
    assert levels_after[24] == [1, 5, 10]
    assert levels_after[25] == [1, 5, 10, 25]
    assert levels_after[49] == [1, 5, 10, 25]
    assert levels_after[50] == [1, 5, 10, 25, 50]
    badges = FeedItem.objects.filter(verb="badge", actor=inviter, data__kind="recruits")
    assert badges.count() == 5


def test_several_recruits_counted_in_one_grant_earn_every_badge_passed(
    project, inviter, user_factory
):
    recruits = [recruit_of(inviter, user_factory, name=f"r{n}") for n in range(6)]
    grant(project, *recruits)
    assert Referral.objects.filter(counted_at__isnull=False).count() == 6
    levels = set(
        Badge.objects.filter(user=inviter, kind="recruits").values_list("level", flat=True)
    )
    assert levels == {1, 5}
    # One feed item for the rungs reached together: the higher one.
    badge_items = FeedItem.objects.filter(verb="badge", actor=inviter, data__kind="recruits")
    assert [i.data["level"] for i in badge_items] == [5]


def test_a_banned_inviters_recruit_waits_until_the_ban_is_lifted(project, inviter, user_factory):
    recruit = recruit_of(inviter, user_factory)
    volunteer = Volunteer.objects.create(user=inviter, banned=True)
    grant(project, recruit)
    assert Referral.objects.get().counted_at is None
    assert not FeedItem.objects.filter(actor=inviter).exists()
    volunteer.banned = False
    volunteer.save()
    grant(project, recruit)
    assert Referral.objects.get().counted_at is not None


def test_the_receiver_costs_one_query_when_nobody_is_a_recruit(
    project, user_factory, django_assert_num_queries
):
    users = [user_factory() for _ in range(3)]
    with django_assert_num_queries(1):
        count_recruits([u.pk for u in users], timezone.now())
    with django_assert_num_queries(0):
        count_recruits([None], timezone.now())


def test_a_failing_receiver_would_roll_back_the_count_with_the_grant(
    project, inviter, user_factory
):
    """Counting commits with the grant: if the grant's transaction fails, nothing counts."""
    recruit = recruit_of(inviter, user_factory)

    def grant_then_fail():
        with transaction.atomic():
            grant(project, recruit)
            raise RuntimeError("validation failed after granting")

    with pytest.raises(RuntimeError):
        grant_then_fail()
    assert Referral.objects.get().counted_at is None
    assert not are_friends(inviter, recruit)


def test_the_real_engine_path_counts_a_recruit_after_validation(
    project, inviter, user_factory, host_factory
):
    """Sign-up attributed, then the recruit computes: lease, return, validate."""
    recruit = recruit_of(inviter, user_factory, project=project)
    project.min_quorum = project.target_nresults = 2
    project.save()
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="b")
    hosts = [host_factory(project, user=recruit), host_factory(project)]
    for host in hosts:
        (a,) = lease_replicas(host, 1)
        Replica.objects.filter(id=a.replica_id).update(sent_at=a.deadline - timedelta(days=1))
        assert record_result(host, a.replica_id, a.lease_token, {"y": 9}, 10.0).accepted
    assert Referral.objects.get().counted_at is None  # returned, not yet validated
    (verdict,) = validate_pending()
    assert verdict.outcome == "valid"
    assert Referral.objects.get().counted_at is not None
    assert are_friends(inviter, recruit)
    assert Badge.objects.filter(user=inviter, kind="recruits", level=1).exists()


def test_invalid_work_does_not_count(project, inviter, user_factory, host_factory):
    recruit = recruit_of(inviter, user_factory)
    project.min_quorum = project.target_nresults = 2
    project.save()
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="b")
    outputs = {recruit.pk: {"y": 10}}  # wrong: 3² is 9
    for host in [host_factory(project, user=recruit), host_factory(project)]:
        (a,) = lease_replicas(host, 1)
        Replica.objects.filter(id=a.replica_id).update(sent_at=a.deadline - timedelta(days=1))
        output = outputs.get(host.user_id, {"y": 9})
        record_result(host, a.replica_id, a.lease_token, output, 10.0)
    validate_pending()
    assert Referral.objects.get().counted_at is None


def test_work_done_before_signing_up_counts_once_the_account_claims_it(
    project, inviter, user_factory
):
    """An invited friend computes anonymously, their result is validated and credited to the
    browser's host; they sign up and their next hello claims the host: they count then."""
    from compute.hosts import claim_host
    from compute.models import Host

    host = Host.objects.create()
    now = timezone.now()
    with transaction.atomic():
        credit.grant(
            [credit.Grant(next(_replica_ids), 1, project.id, host.id, None, 2.0, now)], now
        )
    recruit = recruit_of(inviter, user_factory, project=project)
    assert Referral.objects.get().counted_at is None

    with transaction.atomic():
        claim_host(host, recruit)

    assert Referral.objects.get().counted_at is not None
    assert are_friends(inviter, recruit)
    assert Volunteer.objects.get(user=recruit).total_credit == 2.0


def test_claiming_a_host_that_earned_nothing_counts_no_one(project, inviter, user_factory):
    from compute.hosts import claim_host
    from compute.models import Host

    host = Host.objects.create()
    recruit = recruit_of(inviter, user_factory, project=project)
    with transaction.atomic():
        claim_host(host, recruit)
    assert Referral.objects.get().counted_at is None
