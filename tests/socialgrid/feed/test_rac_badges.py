"""Top 1 / 5 / 25 % by recent average credit (BOINC's rule: among volunteers with RAC > 0,
banned ones left out), computed by the periodic task; once earned, kept."""

from __future__ import annotations

from django.contrib.auth import get_user_model

import pytest

from compute.models import Volunteer
from socialgrid.feed import badges, tasks
from socialgrid.feed.models import Badge, BadgeKind, FeedItem, Verb


def volunteers(racs: list[float], banned: bool = False) -> list:
    users = get_user_model().objects
    made = []
    for rac in racs:
        user = users.create(username=f"v{users.count() + 1}")
        Volunteer.objects.create(user=user, rac=rac, total_credit=rac, banned=banned)
        made.append(user)
    return made


def holders(percentile: int) -> set[str]:
    return set(
        Badge.objects.filter(kind=BadgeKind.RAC_TOP, level=percentile).values_list(
            "user__username", flat=True
        )
    )


@pytest.fixture
def hundred(db) -> list:
    """RAC 1..100 (user k has RAC k), one banned high earner and ten idle volunteers."""
    ranked = volunteers([float(r) for r in range(1, 101)])
    volunteers([10_000.0], banned=True)
    volunteers([0.0] * 10)
    return ranked


def names(users) -> set[str]:
    return {u.username for u in users}


def test_thresholds_are_the_rac_at_each_percentiles_last_place(hundred):
    assert badges.rac_thresholds() == (100, {1: 100.0, 5: 96.0, 25: 76.0})


def test_the_top_volunteers_get_their_badges(hundred):
    new = badges.award_rac_badges()
    assert new == {1: 1, 5: 5, 25: 25}
    assert holders(1) == names(hundred[99:])
    assert holders(5) == names(hundred[95:])
    assert holders(25) == names(hundred[75:])


def test_the_feed_announces_each_volunteers_best_badge_only(hundred):
    badges.award_rac_badges()
    items = FeedItem.objects.filter(verb=Verb.BADGE)
    assert items.count() == 25
    assert items.get(actor=hundred[99]).data == {"kind": "rac_top", "level": 1}
    assert items.get(actor=hundred[95]).data == {"kind": "rac_top", "level": 5}
    assert items.get(actor=hundred[75]).data == {"kind": "rac_top", "level": 25}


def test_running_again_awards_nothing_new(hundred):
    badges.award_rac_badges()
    assert badges.award_rac_badges() == {1: 0, 5: 0, 25: 0}
    assert Badge.objects.count() == 31
    assert FeedItem.objects.filter(verb=Verb.BADGE).count() == 25


def test_badges_are_kept_when_the_rac_falls(hundred):
    badges.award_rac_badges()
    Volunteer.objects.filter(user=hundred[99]).update(rac=0.5)
    badges.award_rac_badges()
    assert hundred[99].username in holders(1)
    assert hundred[98].username in holders(1)  # the new first place


def test_volunteers_tied_with_the_last_place_are_in(db):
    ranked = volunteers([50.0] * 2 + [10.0] * 18)  # 20 ranked: the top 5 % is one place
    badges.award_rac_badges()
    assert holders(5) == names(ranked[:2])
    assert holders(1) == set()  # fewer than 100 volunteers: no top 1 %


def test_no_one_computing_means_no_badges(db):
    volunteers([0.0] * 3)
    assert badges.award_rac_badges() == {}
    assert not Badge.objects.exists()


def test_the_periodic_task_awards_them_and_leaves_thresholds_for_the_page(hundred):
    assert tasks.award_rac_badges.apply().get() == 31
    cached = badges.cached_rac_thresholds()
    assert cached["ranked"] == 100
    assert cached["thresholds"] == {1: 100.0, 5: 96.0, 25: 76.0}


def test_the_task_is_registered_for_the_beat():
    from socialgrid.celery import app

    assert "socialgrid.feed.tasks.award_rac_badges" in app.tasks
