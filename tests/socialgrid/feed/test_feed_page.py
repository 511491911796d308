"""/feed/: one's own and one's friends' items, newest first, paged by cursor; banned
volunteers and strangers left out."""

from __future__ import annotations

import sys
import types
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import pytest

from socialgrid.feed import timeline
from socialgrid.feed.models import FeedItem, Verb
from socialgrid.feed.publishing import publish

URL = "/feed/"


def post(actor, minutes_ago: float = 0, verb: str = Verb.JOINED_TEAM, **data) -> FeedItem:
    data.setdefault("team_name", f"Team of {actor.username}")
    item = publish(actor, verb, **data)
    if minutes_ago:
        at = timezone.now() - timedelta(minutes=minutes_ago)
        FeedItem.objects.filter(pk=item.pk).update(created_at=at)
        item.created_at = at
    return item


def ids_on(response) -> list[int]:
    return [item.id for item in response.context["items"]]


@pytest.fixture
def me(user_factory, client):
    user = user_factory("ada")
    client.force_login(user)
    return user


def test_it_asks_visitors_to_sign_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_only_answers_get(client, me):
    assert client.post(URL).status_code == 405


def test_it_shows_mine_and_my_friends_items_newest_first_and_no_one_elses(
    client, me, user_factory, befriend
):
    friend, stranger = user_factory("bob"), user_factory("eve")
    befriend(me, friend)
    old = post(me, minutes_ago=30)
    theirs = post(friend, minutes_ago=10)
    post(stranger, minutes_ago=5)
    newest = post(me, minutes_ago=1)
    response = client.get(URL)
    assert response.status_code == 200
    assert ids_on(response) == [newest.id, theirs.id, old.id]
    assert "Team of eve" not in response.content.decode()


def test_a_friends_friend_is_not_in_my_feed(client, me, user_factory, befriend):
    friend, friends_friend = user_factory(), user_factory()
    befriend(me, friend)
    befriend(friend, friends_friend)
    post(friends_friend)
    assert ids_on(client.get(URL)) == []


def test_banned_volunteers_items_are_left_out(client, me, user_factory, befriend, ban):
    friend, banned_friend = user_factory(), user_factory()
    befriend(me, friend)
    befriend(me, banned_friend)
    shown = post(friend)
    post(banned_friend)
    ban(banned_friend)
    assert ids_on(client.get(URL)) == [shown.id]


def test_friends_items_about_a_private_project_are_left_out_but_mine_are_shown(
    client, me, user_factory, befriend, project_factory
):
    friend = user_factory()
    befriend(me, friend)
    hidden = project_factory(name="Secret Sauce", is_public=False)
    public = project_factory(name="Mandelbrot@Home")
    theirs_public = publish(friend, Verb.JOINED_PROJECT, project=public)
    publish(friend, Verb.JOINED_PROJECT, project=hidden)
    mine_hidden = publish(me, Verb.JOINED_PROJECT, project=hidden)
    response = client.get(URL)
    assert set(ids_on(response)) == {theirs_public.id, mine_hidden.id}


def test_older_items_are_a_link_away_without_gaps_or_repeats(client, me):
    items = [post(me, minutes_ago=m) for m in range(1, 31)]  # items[0] is the newest
    first = client.get(URL)
    assert ids_on(first) == [i.id for i in items[: timeline.PAGE_SIZE]]
    older = first.context["older"]
    assert f'href="/feed/?before={older}"' in first.content.decode()
    second = client.get(URL, {"before": older})
    assert ids_on(second) == [i.id for i in items[timeline.PAGE_SIZE :]]
    assert second.context["older"] == ""
    page = second.content.decode()
    assert 'rel="next"' not in page
    assert "Newest activity" in page


def test_items_with_the_same_time_are_paged_by_id(me):
    same = timezone.now() - timedelta(hours=1)
    items = [post(me) for _ in range(5)]
    FeedItem.objects.filter(actor=me).update(created_at=same)
    first = timeline.feed_page(me, size=2)
    second = timeline.feed_page(me, first.older, size=2)
    third = timeline.feed_page(me, second.older, size=2)
    seen = [i.id for page in (first, second, third) for i in page.items]
    assert seen == sorted((i.id for i in items), reverse=True)
    assert third.older is None


def test_a_cursor_survives_its_round_trip_to_the_microsecond(me):
    item = post(me)
    cursor = timeline.Cursor.after(FeedItem.objects.get(pk=item.pk))
    assert timeline.Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("before", ["", "abc", "12-", "-3", "1.5-2", "9" * 18 + "-1", "1-2-3"])
def test_a_mangled_cursor_gets_a_clear_error_and_the_newest_page(client, me, before):
    newest = post(me)
    response = client.get(URL, {"before": before})
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert ids_on(response) == [newest.id]


def test_an_empty_feed_says_how_to_fill_it(client, me):
    page = client.get(URL).content.decode()
    assert "Nothing here yet" in page
    assert reverse("compute:home") in page


def test_a_page_costs_the_same_queries_for_few_items_or_many(
    client, me, user_factory, befriend, project_factory
):
    project = project_factory()
    others = [user_factory() for _ in range(6)]
    for other in others:
        befriend(me, other)

    def add(n: int) -> None:
        for i in range(n):
            actor = others[i % len(others)]
            publish(actor, Verb.JOINED_PROJECT, project=project)
            publish(actor, Verb.BECAME_FRIENDS, friend_id=others[(i + 1) % len(others)].pk)
            post(actor)

    add(1)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    add(8)
    with CaptureQueriesContext(connection) as many:
        response = client.get(URL)
    assert len(response.context["items"]) == timeline.PAGE_SIZE
    assert len(many) == len(few)


def test_without_the_friends_app_nobody_has_friends(monkeypatch, me):
    monkeypatch.setitem(sys.modules, "socialgrid.friends.friendships", None)
    assert timeline.friend_ids(me) == set()


def test_friends_come_from_the_friends_app(monkeypatch, me):
    fake = types.ModuleType("socialgrid.friends.friendships")
    fake.friend_ids = lambda user: {41, 42} if user == me else set()
    monkeypatch.setitem(sys.modules, "socialgrid.friends.friendships", fake)
    assert timeline.friend_ids(me) == {41, 42}
