from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from compute import credit
from socialgrid.teams.challenges import create_challenge
from socialgrid.teams.membership import join_team
from socialgrid.teams.models import Challenge

SCRIPT = "<script>alert(1)</script>"
FMT = "%Y-%m-%dT%H:%M"


def form(*slugs: str, start: timedelta = timedelta(hours=1), length=timedelta(days=1)):
    starts = timezone.now() + start
    return {
        "name": "Weekend sprint",
        "description": "",
        "starts_at": starts.strftime(FMT),
        "ends_at": (starts + length).strftime(FMT),
        "teams": ", ".join(slugs),
    }


def test_a_founder_starts_a_challenge_from_the_form(client, team_factory):
    red, blue = team_factory("Red"), team_factory("Blue")
    client.force_login(red.founder)
    page = client.get(reverse("teams:challenge_new"), {"invite": blue.slug})
    assert page.status_code == 200
    assert f'value="{blue.slug}"' in page.content.decode()
    response = client.post(reverse("teams:challenge_new"), form(blue.slug))
    challenge = Challenge.objects.get()
    assert response["Location"] == challenge.get_absolute_url()
    assert set(challenge.teams.all()) == {red, blue}


def test_only_founders_get_the_challenge_form(client, team_factory, user_factory):
    red, blue = team_factory(), team_factory()
    member = user_factory()
    join_team(member, red)
    client.force_login(member)
    assert client.get(reverse("teams:challenge_new")).status_code == 403
    assert client.post(reverse("teams:challenge_new"), form(blue.slug)).status_code == 403
    client.logout()
    assert client.post(reverse("teams:challenge_new"), form(blue.slug)).status_code == 302
    assert not Challenge.objects.exists()


def test_a_bad_challenge_gets_an_error_and_changes_nothing(client, team_factory):
    red, blue = team_factory(), team_factory()
    client.force_login(red.founder)
    url = reverse("teams:challenge_new")
    cases = [
        (form(blue.slug, length=-timedelta(hours=2)), "must end after it starts"),
        (form(blue.slug, start=-timedelta(days=2)), "cannot start in the past"),
        (form("no-such-team"), "no-such-team"),
        (form(red.slug), "at least one other team"),
        (form(), "This field is required"),
        (form(", ,"), "Name at least one other team"),
        ({**form(blue.slug), "starts_at": "tomorrow"}, "Enter a valid date/time"),
    ]
    for data, message in cases:
        response = client.post(url, data)
        assert response.status_code == 200, message
        assert message in response.content.decode(), message
    assert not Challenge.objects.exists()


def test_challenge_creation_is_rate_limited(client, team_factory):
    red, blue = team_factory(), team_factory()
    client.force_login(red.founder)
    for _ in range(5):
        assert client.post(reverse("teams:challenge_new"), form(blue.slug)).status_code == 302
    assert client.post(reverse("teams:challenge_new"), form(blue.slug)).status_code == 429
    assert Challenge.objects.count() == 5


def test_the_challenge_page_shows_standings_in_the_window(client, team_factory, project_factory):
    red, blue = team_factory("Red"), team_factory("Blue")
    now = timezone.now()
    challenge = create_challenge(
        red.founder,
        name="Sprint",
        starts_at=now,
        ends_at=now + timedelta(days=1),
        team_slugs=[blue.slug],
        now=now,
    )
    project = project_factory()
    inside, before = now + timedelta(minutes=1), now - timedelta(minutes=1)
    with transaction.atomic():
        credit.grant([credit.Grant(1, 1, project.id, None, blue.founder.pk, 8.0, inside)], inside)
    with transaction.atomic():
        credit.grant([credit.Grant(2, 2, project.id, None, red.founder.pk, 99.0, before)], before)
    response = client.get(challenge.get_absolute_url())
    body = response.content.decode()
    assert response.status_code == 200
    assert [(s.team.name, s.credit) for s in response.context["standings"]] == [
        ("Blue", 8.0),
        ("Red", 0.0),
    ]
    assert "Running" in body
    assert 'property="og:title" content="Sprint"' in body
    assert "share-links" in body
    listing = client.get(reverse("teams:challenges")).content.decode()
    assert challenge.get_absolute_url() in listing


def test_challenge_text_and_team_names_are_escaped(client, team_factory):
    red, blue = team_factory(SCRIPT), team_factory("Blue")
    now = timezone.now()
    challenge = create_challenge(
        red.founder,
        name=SCRIPT,
        description=SCRIPT,
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(days=1),
        team_slugs=[blue.slug],
        now=now,
    )
    for url in (challenge.get_absolute_url(), reverse("teams:challenges"), red.get_absolute_url()):
        body = client.get(url).content.decode()
        assert SCRIPT not in body, url
        assert "&lt;script&gt;" in body, url


def test_an_unknown_challenge_is_not_found(client, db):
    assert client.get(reverse("teams:challenge", args=["nope"])).status_code == 404
