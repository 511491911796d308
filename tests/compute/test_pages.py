"""The page data: compute.stats (the live numbers) and compute.pages (cards, project page)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import pytest

from compute import pages, stats, submission
from compute.assimilation import assimilate_pending
from compute.models import Membership
from compute.results import record_error, record_result
from compute.scheduler import lease_replicas
from compute.states import BatchState, MembershipState
from compute.validation import validate_pending
from tests.support import square


@pytest.fixture
def project(project_factory):
    return project_factory(min_quorum=1, target_nresults=1)


def submit(project, n=4, name="squares"):
    return submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(n)], name=name
    )


def compute(host, n, now=None):
    """Lease n replicas to host and return correct results for them."""
    leased = lease_replicas(host, n, now=now)
    for a in leased:
        done_at = (now or timezone.now()) + timedelta(seconds=1)
        assert record_result(host, a.replica_id, a.lease_token, square(a.input), 1.0, done_at)
    return leased


def settle():
    validate_pending()
    assimilate_pending()


@pytest.fixture
def scenario(project, project_factory, host_factory):
    """Four work units of quorum 1: two returned by one host, one in progress on another, one
    errored on a third; a long-silent host holding nothing, a host online for another
    project, and a result from yesterday."""
    now = timezone.now()
    batch = submit(project, n=4)
    returning = host_factory(project, last_seen=now)
    computing = host_factory(project, last_seen=now)
    failing = host_factory(project, last_seen=now)
    silent = host_factory(project, last_seen=now - timedelta(minutes=10))
    other = project_factory()
    submit(other, n=2)
    elsewhere = host_factory(other, last_seen=now)

    compute(returning, 2)
    assert len(lease_replicas(computing, 1)) == 1
    [doomed] = lease_replicas(failing, 1)
    assert record_error(failing, doomed.replica_id, doomed.lease_token, "crashed")
    assert lease_replicas(elsewhere, 1)
    settle()

    yesterday = submit(project, n=1, name="yesterday")
    compute(silent, 1, now=now - timedelta(hours=25))
    settle()
    return batch, yesterday


def test_volunteers_online_are_recent_hosts_computing_or_returning_for_the_project(
    project, scenario
):
    # returning (results now), computing (in progress), failing (an error now); not the
    # silent host (last seen 10 minutes ago) nor the host computing for another project.
    assert stats.volunteers_online(project) == 3


def test_a_host_seen_recently_with_work_leased_long_ago_still_counts_as_online(
    project, host_factory
):
    submit(project, n=1)
    host = host_factory(project, last_seen=timezone.now())
    assert lease_replicas(host, 1, now=timezone.now() - timedelta(minutes=30))
    assert stats.volunteers_online(project) == 1


def test_results_today_counts_successes_of_the_last_24_hours(project, scenario):
    assert stats.results_today(project) == 2


def test_project_stats_reports_the_batch_in_progress(project, scenario):
    batch, yesterday = scenario
    yesterday.refresh_from_db()
    assert yesterday.state == BatchState.COMPLETED
    assert stats.project_stats(project) == {
        "online": 3,
        "results_today": 2,
        "batch": {"id": batch.id, "done": 2, "total": 4},
    }


def test_the_current_batch_is_the_newest_completed_one_when_none_is_in_progress(
    project, host_factory
):
    older = submit(project, n=1, name="older")
    newer = submit(project, n=1, name="newer")
    compute(host_factory(project), 2)
    settle()
    cancelled = submit(project, n=1, name="cancelled")
    submission.cancel_batch(cancelled)
    for batch in (older, newer):
        batch.refresh_from_db()
        assert batch.state == BatchState.COMPLETED
    assert stats.current_batch(project) == newer
    assert stats.project_stats(project)["batch"] == {"id": newer.id, "done": 1, "total": 1}


def test_a_project_without_batches_has_no_current_batch(project):
    assert stats.project_stats(project) == {"online": 0, "results_today": 0, "batch": None}


def test_project_cards_show_public_projects_with_their_numbers(
    project, project_factory, scenario, user_factory, django_assert_num_queries
):
    batch, _ = scenario
    Membership.objects.create(user=user_factory(), project=project, state=MembershipState.LEFT)
    hidden = project_factory(is_public=False)
    with django_assert_num_queries(3):
        cards = {card.project.slug: card for card in pages.project_cards()}
    assert hidden.slug not in cards
    card = cards[project.slug]
    # Four hosts' users joined; the member who left does not count.
    assert card.volunteers == 4
    assert card.results_24h == 2
    assert card.batch == batch
    assert card.batch.n_done == 2


def test_the_home_page_counts_each_volunteer_of_public_projects_once(
    project, project_factory, user_factory, django_assert_max_num_queries
):
    other = project_factory()
    hidden = project_factory(is_public=False)
    both, gone = user_factory(), user_factory()
    for p in (project, other):
        Membership.objects.create(user=both, project=p)
    Membership.objects.create(user=gone, project=other, state=MembershipState.LEFT)
    Membership.objects.create(user=user_factory(), project=hidden)
    with django_assert_max_num_queries(4):
        page = pages.home_page()
    assert (page.volunteers, page.results_24h, page.n_projects) == (1, 0, 2)


def test_the_project_page_lists_batches_in_progress_and_the_top_ten_contributors(
    project, user_factory
):
    submit(project, n=2, name="first")
    second = submit(project, n=3, name="second")
    users = [user_factory() for _ in range(12)]
    for credit, user in enumerate(users):
        Membership.objects.create(user=user, project=project, total_credit=credit * 10.0)
    page = pages.project_page(project)
    assert [b.name for b in page.batches] == ["second", "first"]
    assert page.batch == second
    # The member without credit is not a contributor; the best come first.
    assert [m.user for m in page.top_contributors] == users[:1:-1]
    assert page.picture_batch is None


def test_projects_with_work_are_those_with_replicas_waiting_to_be_sent(
    client, project, project_factory, host_factory
):
    """What a volunteer whose project ran dry is offered: public, active projects with
    unsent work now, never the one they are on, and not a project whose work is all out."""
    dry = project_factory(slug="dry", min_quorum=1, target_nresults=1)
    submit(dry, n=1)
    assert len(lease_replicas(host_factory(dry), 5)) == 1  # all of its work is out
    submit(project, n=2)
    hidden = project_factory(slug="hidden", is_public=False)
    submit(hidden, n=2)
    stopped = project_factory(slug="stopped", is_active=False)
    submit(stopped, n=2)

    assert [p.slug for p in pages.projects_with_work()] == [project.slug]
    assert pages.projects_with_work(but=project.slug) == []

    answer = client.get("/projects/with-work.json", {"but": "dry"})
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    assert answer.json() == {
        "projects": [
            {"slug": project.slug, "name": project.name, "url": project.get_absolute_url()}
        ]
    }
    assert client.get("/projects/with-work.json", {"but": project.slug}).json() == {"projects": []}


def test_the_panel_says_when_a_result_is_credited(client, project_factory):
    """Credit waits for the quorum: the panel says so, for the project's own quorum."""
    replicated = project_factory(slug="twice", min_quorum=2, target_nresults=2)
    alone = project_factory(slug="once", min_quorum=1, target_nresults=1)
    text = client.get(replicated.get_absolute_url()).content.decode()
    assert "Each task is computed by 2 volunteers" in text
    text = client.get(alone.get_absolute_url()).content.decode()
    assert "A result is credited once it has been checked." in text
    assert "Each task is computed by" not in text
