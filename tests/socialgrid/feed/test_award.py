"""publish() and award(): the calls other apps make."""

from __future__ import annotations

import pytest

from socialgrid.feed.models import Badge, BadgeKind, FeedItem, Verb
from socialgrid.feed.publishing import award, publish


def test_publish_records_an_item_and_returns_it(user_factory, project_factory):
    user, project = user_factory(), project_factory()
    item = publish(user, "joined_project", project=project, extra="kept")
    assert FeedItem.objects.get() == item
    assert (item.verb, item.project, item.data) == (Verb.JOINED_PROJECT, project, {"extra": "kept"})


def test_publish_refuses_an_unknown_verb(user_factory):
    with pytest.raises(ValueError, match="did_something"):
        publish(user_factory(), "did_something")
    assert not FeedItem.objects.exists()


def test_a_badge_is_awarded_once(user_factory):
    user = user_factory()
    assert award(user, BadgeKind.RAC_TOP, 5) is True
    assert award(user, "rac_top", 5) is False
    assert Badge.objects.filter(user=user).count() == 1
    item = FeedItem.objects.get()
    assert (item.verb, item.data) == (Verb.BADGE, {"kind": "rac_top", "level": 5})


def test_a_refused_second_award_leaves_the_transaction_usable(user_factory):
    user = user_factory()
    award(user, BadgeKind.RECRUITS, 1)
    award(user, BadgeKind.RECRUITS, 1)
    assert Badge.objects.count() == 1  # would raise if the failed insert broke the transaction


def test_a_credit_badge_is_announced_as_a_milestone(user_factory):
    user = user_factory()
    award(user, BadgeKind.CREDIT, 1000)
    item = FeedItem.objects.get()
    assert (item.verb, item.data) == (Verb.CREDIT_MILESTONE, {"credit": 1000})


def test_an_unannounced_badge_stays_out_of_the_feed(user_factory):
    assert award(user_factory(), BadgeKind.CREDIT, 10, announce=False) is True
    assert not FeedItem.objects.exists()


def test_award_refuses_an_unknown_kind(user_factory):
    with pytest.raises(ValueError, match="medal"):
        award(user_factory(), "medal", 1)


def test_badges_describe_themselves():
    assert Badge(kind=BadgeKind.CREDIT, level=1).title == "1 credit"
    assert Badge(kind=BadgeKind.CREDIT, level=100_000).title == "100,000 credits"
    assert Badge(kind=BadgeKind.RAC_TOP, level=1).title == "Top 1%"
    assert Badge(kind=BadgeKind.RECRUITS, level=1).description == (
        "Brought 1 new volunteer to socialgrid."
    )
