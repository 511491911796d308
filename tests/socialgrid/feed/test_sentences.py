"""Feed items as sentences: one per verb, people by their public name, every user-supplied
value escaped, links only built from slugs and ids."""

from __future__ import annotations

from django.urls import reverse

import pytest

from socialgrid.accounts.models import Privacy
from socialgrid.feed.models import BadgeKind, Verb
from socialgrid.feed.publishing import publish
from socialgrid.feed.sentences import render_items

EVIL = '<script>alert("x")</script>'


def named(user, name: str, privacy: str = Privacy.NAMED):
    user.profile.display_name = name
    user.profile.privacy = privacy
    user.profile.save()
    return user


@pytest.fixture
def ada(user_factory):
    return named(user_factory("ada"), "Ada")


@pytest.fixture
def bob(user_factory):
    return named(user_factory("bob"), "Bob")


def sentence(item):
    return render_items([item])[0]


def test_joining_a_project_names_and_links_it(ada, project_factory):
    project = project_factory(name="Mandelbrot@Home", slug="mandelbrot")
    s = sentence(publish(ada, Verb.JOINED_PROJECT, project=project))
    assert s.text == "Ada joined Mandelbrot@Home"
    assert s.parts[-1].href == reverse("compute:project", args=["mandelbrot"])
    assert s.parts[0].href == reverse("accounts:profile", args=["ada"])


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"credit": 1}, "Ada reached 1 credit"),
        ({"credit": 10000}, "Ada reached 10,000 credits"),
        ({}, "Ada reached a credit milestone"),
        ({"credit": "lots"}, "Ada reached a credit milestone"),
    ],
)
def test_a_credit_milestone_says_the_amount(ada, data, text):
    assert sentence(publish(ada, Verb.CREDIT_MILESTONE, **data)).text == text


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"kind": BadgeKind.RAC_TOP, "level": 5}, "Ada earned the “Top 5%” badge"),
        ({"kind": BadgeKind.RECRUITS, "level": 10}, "Ada earned the “10 recruits” badge"),
        ({"kind": BadgeKind.CREDIT, "level": 1000}, "Ada earned the “1,000 credits” badge"),
        ({"kind": "mystery", "level": 1}, "Ada earned a badge"),
    ],
)
def test_a_badge_says_which(ada, data, text):
    assert sentence(publish(ada, Verb.BADGE, **data)).text == text


@pytest.mark.parametrize(
    ("verb", "text"),
    [
        (Verb.FOUNDED_TEAM, "Ada founded the team Gridlock"),
        (Verb.JOINED_TEAM, "Ada joined the team Gridlock"),
        (Verb.LEFT_TEAM, "Ada left the team Gridlock"),
    ],
)
def test_team_news_links_the_team(ada, verb, text):
    s = sentence(publish(ada, verb, team_name="Gridlock", team_slug="gridlock"))
    assert s.text == text
    assert s.parts[-1].href == "/teams/gridlock/"


def test_team_news_without_a_team_still_reads(ada):
    assert sentence(publish(ada, Verb.JOINED_TEAM)).text == "Ada joined a team"


def test_a_slug_no_route_accepts_gives_no_link(ada):
    s = sentence(publish(ada, Verb.JOINED_TEAM, team_name="X", team_slug="javascript:alert(1)"))
    assert s.parts[-1].href == ""


def test_new_friends_are_named_by_their_current_public_name(ada, bob):
    item = publish(ada, Verb.BECAME_FRIENDS, friend_id=bob.pk)
    assert sentence(item).text == "Ada and Bob became friends"
    named(bob, "Bob", Privacy.ANONYMOUS)
    s = sentence(item)
    assert s.text == f"Ada and Anonymous volunteer #{bob.pk} became friends"
    assert "bob" not in s.parts[2].href


def test_a_friend_stored_by_name_is_shown_as_stored(ada):
    item = publish(ada, Verb.BECAME_FRIENDS, friend="Grace")
    assert sentence(item).text == "Ada and Grace became friends"


def test_a_recruit_is_named_with_the_project(ada, bob, project_factory):
    project = project_factory(name="Primes")
    assert sentence(publish(ada, Verb.RECRUITED, recruit_id=bob.pk)).text == "Ada recruited Bob"
    item = publish(ada, Verb.RECRUITED, project=project, recruit="Bob")
    assert sentence(item).text == "Ada recruited Bob to Primes"
    assert sentence(publish(ada, Verb.RECRUITED)).text == "Ada recruited a new volunteer"


def test_a_challenge_names_and_links_it_and_the_team(ada):
    item = publish(
        ada,
        Verb.CHALLENGE,
        challenge_name="Summer sprint",
        challenge_slug="summer-sprint",
        team_name="Gridlock",
        team_slug="gridlock",
    )
    s = sentence(item)
    assert s.text == "Ada started the challenge “Summer sprint” for the team Gridlock"
    assert s.parts[2].href == reverse("teams:challenge", args=["summer-sprint"])
    won = sentence(publish(ada, Verb.CHALLENGE, challenge_name="Sprint", event="won"))
    assert won.text == "Ada won the challenge “Sprint”"
    assert sentence(publish(ada, Verb.CHALLENGE)).text == "Ada took part in a team challenge"


def test_an_anonymous_actor_is_shown_as_such(user_factory):
    shy = named(user_factory("shyuser"), "Shy", Privacy.ANONYMOUS)
    s = sentence(publish(shy, Verb.JOINED_TEAM, team_name="T"))
    assert s.text.startswith(f"Anonymous volunteer #{shy.pk} joined")
    assert "shyuser" not in s.parts[0].href
    assert "Shy" not in s.text


def test_long_values_are_shortened(ada):
    s = sentence(publish(ada, Verb.JOINED_TEAM, team_name="x" * 500))
    assert len(s.parts[-1].text) == 120


def test_the_live_form_carries_the_same_parts(ada):
    item = publish(ada, Verb.JOINED_TEAM, team_name="Gridlock", team_slug="gridlock")
    data = sentence(item).as_json()
    assert data["id"] == item.id
    assert data["text"] == "Ada joined the team Gridlock"
    assert data["parts"][-1] == {"text": "Gridlock", "href": "/teams/gridlock/"}
    assert data["created_at"] == item.created_at.isoformat()


EVIL_ITEMS = [
    (Verb.JOINED_TEAM, {"team_name": EVIL, "team_slug": "t"}),
    (Verb.FOUNDED_TEAM, {"team_name": EVIL}),
    (Verb.LEFT_TEAM, {"team": EVIL}),
    (Verb.BECAME_FRIENDS, {"friend": EVIL}),
    (Verb.RECRUITED, {"recruit": EVIL}),
    (Verb.CHALLENGE, {"challenge_name": EVIL, "team_name": EVIL}),
    (Verb.BADGE, {"kind": EVIL, "level": EVIL}),
    (Verb.CREDIT_MILESTONE, {"credit": EVIL}),
]


@pytest.mark.parametrize(("verb", "data"), EVIL_ITEMS)
def test_every_user_supplied_value_is_escaped_on_the_page(client, user_factory, verb, data):
    actor = named(user_factory(), EVIL)
    publish(actor, verb, **data)
    client.force_login(actor)
    page = client.get("/feed/").content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page


def test_a_project_name_and_a_friends_name_are_escaped_too(client, user_factory, project_factory):
    actor, friend = user_factory(), named(user_factory(), EVIL)
    publish(actor, Verb.JOINED_PROJECT, project=project_factory(name=EVIL))
    publish(actor, Verb.BECAME_FRIENDS, friend_id=friend.pk)
    client.force_login(actor)
    page = client.get("/feed/").content.decode()
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert") == 2
