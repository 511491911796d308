"""The owner's pages: the project list and a project's dashboard, owner only."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.utils import timezone

import pytest

from compute.api import charts, owner_stats
from compute.models import Host, Replica
from compute.states import Outcome, ServerState, ValidateState
from compute.submission import create_batch

NOW = datetime(2026, 5, 4, 12, 30, 20, tzinfo=UTC)


@pytest.fixture
def scenario(owned_project, host_factory):
    """Six replicas came back to ``mine``: at 12:25 two valid results (two hosts) and one
    inconclusive; at 12:20 one client error; at 12:29 an invalid one and one pending (two
    hosts); plus
    one replica still in progress and an old result (two hours ago)."""
    app = owned_project.apps.get()
    batch = create_batch(owned_project, app, [{"x": i} for i in range(6)], name="squares")
    hosts = [host_factory(owned_project) for _ in range(3)]
    replicas = list(Replica.objects.order_by("id"))
    plan = [
        (hosts[0], "12:25", Outcome.SUCCESS, ValidateState.VALID),
        (hosts[1], "12:25", Outcome.SUCCESS, ValidateState.VALID),
        (hosts[0], "12:25", Outcome.SUCCESS, ValidateState.INCONCLUSIVE),
        (hosts[1], "12:20", Outcome.CLIENT_ERROR, ValidateState.INIT),
        (hosts[2], "12:29", Outcome.SUCCESS, ValidateState.INVALID),
        (hosts[0], "12:29", Outcome.SUCCESS, ValidateState.INIT),
        (hosts[0], "10:30", Outcome.SUCCESS, ValidateState.VALID),
    ]
    for replica, (host, hhmm, outcome, state) in zip(replicas, plan, strict=False):
        hour, minute = map(int, hhmm.split(":"))
        Replica.objects.filter(id=replica.id).update(
            host=host,
            server_state=ServerState.OVER,
            outcome=outcome,
            validate_state=state,
            received_at=NOW.replace(hour=hour, minute=minute, second=7),
        )
    Replica.objects.filter(id=replicas[7].id).update(
        host=hosts[2], server_state=ServerState.IN_PROGRESS
    )
    Host.objects.filter(id__in=[h.id for h in hosts]).update(last_seen=NOW)
    return batch


@pytest.mark.django_db
def test_results_are_counted_per_minute_over_the_last_hour(owned_project, scenario):
    minutes = owner_stats.results_per_minute(owned_project, NOW)

    assert len(minutes) == 60
    assert minutes[0].start == NOW.replace(hour=11, minute=31, second=0)
    assert minutes[-1].start == NOW.replace(minute=30, second=0)
    by_time = {m.start.strftime("%H:%M"): m for m in minutes if m.results or m.errors}
    assert {t: (m.results, m.errors, m.hosts) for t, m in by_time.items()} == {
        "12:20": (0, 1, 1),
        "12:25": (3, 0, 2),
        "12:29": (2, 0, 2),
    }


@pytest.mark.django_db
def test_validation_outcomes_of_the_last_day(owned_project, scenario):
    assert owner_stats.validation_outcomes(owned_project, NOW) == {
        "valid": 3,
        "invalid": 1,
        "inconclusive": 1,
        "error": 1,
        "pending": 1,
    }


@pytest.mark.django_db
def test_the_whole_dashboard_takes_a_few_queries(
    owned_project, scenario, django_assert_max_num_queries
):
    with django_assert_max_num_queries(7):
        board = owner_stats.project_dashboard(owned_project, NOW)

    # Online: seen lately and returned work in the last two minutes or holding some.
    assert (board.online, board.in_progress, board.unsent) == (2, 1, 4)
    assert (board.results_last_hour, board.errors_last_hour) == (5, 1)
    assert [b.name for b in board.batches] == ["squares"]


def test_chart_scales_end_on_round_numbers():
    assert [charts.nice_ceiling(n) for n in (0, 1, 3, 7, 11, 99, 101, 4000)] == [
        1,
        1,
        5,
        10,
        20,
        100,
        200,
        5000,
    ]


def test_bars_stack_errors_on_results():
    start = NOW.replace(second=0)
    chart = charts.results_chart([owner_stats.Minute(start, 3, 2, 1), owner_stats.Minute(start)])

    assert chart.peak == 5
    first, empty = chart.bars
    assert (first.height, first.height2) == (90.0, 60.0)
    assert first.y == 60.0
    assert first.y2 == 0.0
    assert (empty.height, empty.height2) == (0, 0)
    assert first.label == "12:30 UTC: 3 results, 2 errors"


@pytest.mark.django_db
def test_the_dashboard_is_for_the_owner_only(client, owner, owned_project, user_factory):
    url = "/owners/projects/mine/"
    assert client.get(url)["Location"].startswith("/accounts/login/")

    client.force_login(user_factory())
    assert client.get(url).status_code == 404
    assert client.get(url + "live/").status_code == 404

    client.force_login(owner)
    assert client.get(url).status_code == 200
    assert client.get("/owners/projects/nope/").status_code == 404


@pytest.mark.django_db
def test_the_dashboard_shows_the_numbers(client, owner, owned_project, scenario):
    # Move the scenario to the real present: the page counts back from now.
    shift = timezone.now().replace(second=30, microsecond=0) - NOW
    for replica in Replica.objects.filter(received_at__isnull=False):
        Replica.objects.filter(id=replica.id).update(received_at=replica.received_at + shift)
    Host.objects.update(last_seen=timezone.now())
    client.force_login(owner)

    html = client.get("/owners/projects/mine/").content.decode()

    counters = dict(re.findall(r'data-counter="(\w+)">([\d,]+)<', html))
    assert counters == {
        "online": "2",
        "results": "5",
        "errors": "1",
        "unsent": "4",
        "in_progress": "1",
    }
    outcomes = dict(re.findall(r'data-outcome="(\w+)">([\d,]+)<', html))
    assert outcomes == {
        "valid": "3",
        "invalid": "1",
        "inconclusive": "1",
        "error": "1",
        "pending": "1",
    }
    assert html.count('class="bar"') >= 3
    assert 'class="bar bar-errors"' in html
    assert '<progress value="0" max="6"' in html
    assert f"/owners/batches/{scenario.id}/results.csv" in html
    assert 'data-live-url="/owners/projects/mine/live/"' in html


@pytest.mark.django_db
def test_the_live_part_is_a_fragment_that_is_not_cached(client, owner, owned_project, scenario):
    client.force_login(owner)

    response = client.get("/owners/projects/mine/live/")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert "<html" not in html
    assert 'data-counter="online"' in html


@pytest.mark.django_db
def test_names_are_escaped(client, owner, project_factory):
    project = project_factory(owner=owner, slug="xss", name="<script>alert(1)</script>")
    create_batch(project, project.apps.get(), [{"x": 1}], name="<img src=x onerror=alert(1)>")
    client.force_login(owner)

    for url in ("/owners/", "/owners/projects/xss/"):
        html = client.get(url).content.decode()
        assert "<script>alert(1)" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;" in html


@pytest.mark.django_db
def test_the_list_shows_only_ones_own_projects(
    client, owner, owned_project, project_factory, scenario
):
    project_factory(slug="theirs", name="Theirs")
    client.force_login(owner)

    html = client.get("/owners/").content.decode()

    assert 'href="/owners/projects/mine/"' in html
    assert "Theirs" not in html


@pytest.mark.django_db
def test_someone_without_projects_is_told_how_to_start(client, owner, user_factory):
    client.force_login(owner)
    assert "projects create" in client.get("/owners/").content.decode()

    client.force_login(user_factory())
    assert "ask the site" in client.get("/owners/").content.decode()
