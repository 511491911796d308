"""/feed/badges/ and the badges include for profile pages (templates/feed/badges.html)."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse

import pytest

from compute.models import Volunteer
from socialgrid.feed import badges
from socialgrid.feed.models import Badge, BadgeKind
from socialgrid.feed.publishing import award

URL = "/feed/badges/"


@pytest.fixture
def me(user_factory, client):
    user = user_factory()
    client.force_login(user)
    return user


def test_it_asks_visitors_to_sign_in(client, db):
    assert reverse("feed:badges") == URL
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_lists_my_badges_and_every_ladder(client, me):
    Volunteer.objects.create(user=me, total_credit=123.4, rac=20.0)
    award(me, BadgeKind.CREDIT, 100)
    award(me, BadgeKind.RAC_TOP, 25)
    page = client.get(URL).content.decode()
    assert "Top 25%" in page
    assert "Among the top 25% of volunteers" in page
    for rung in ("1 credit", "10,000,000 credits", "Top 1%", "Top 5%", "50 recruits"):
        assert rung in page
    assert "877 more to reach <strong>1,000 credits</strong>" in page
    assert "Not worked out yet" in page  # the periodic task has not run


def test_it_shows_the_current_thresholds_once_computed(client, me, user_factory):
    for rac in range(1, 101):
        Volunteer.objects.create(user=user_factory(), rac=float(rac))
    badges.award_rac_badges()
    page = client.get(URL).content.decode()
    assert "96 a day" in page
    assert "the 100 volunteers" in page
    assert "Not enough volunteers yet" not in page


def test_a_rung_too_small_for_the_crowd_says_so(client, me, user_factory):
    for rac in (1.0, 2.0, 3.0, 4.0):
        Volunteer.objects.create(user=user_factory(), rac=rac)
    badges.award_rac_badges()
    page = client.get(URL).content.decode()
    assert page.count("Not enough volunteers yet") == 2  # only the top 25 % has a place
    assert "4 a day" in page


def test_a_newcomer_sees_the_first_milestone_ahead(client, me):
    page = client.get(URL).content.decode()
    assert "No badges yet." in page
    assert "1 more to reach <strong>1 credit</strong>" in page


def test_the_include_shows_badges_best_first(user_factory):
    user = user_factory()
    for kind, level in [
        (BadgeKind.CREDIT, 10),
        (BadgeKind.RAC_TOP, 25),
        (BadgeKind.CREDIT, 1000),
        (BadgeKind.RECRUITS, 5),
        (BadgeKind.RAC_TOP, 5),
    ]:
        Badge.objects.create(user=user, kind=kind, level=level)
    ordered = badges.badges_for(user)
    assert [b.title for b in ordered] == [
        "Top 5%",
        "Top 25%",
        "1,000 credits",
        "10 credits",
        "5 recruits",
    ]
    html = render_to_string("feed/badges.html", {"badges": ordered})
    assert html.index("Top 5%") < html.index("1,000 credits")
    assert 'aria-labelledby="badges-heading"' in html
    assert "<h2" in html


def test_the_include_takes_a_heading_and_says_when_there_are_none():
    html = render_to_string("feed/badges.html", {"badges": [], "badges_title": "Awards"})
    assert "Awards" in html
    assert "No badges yet." in html
