from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from compute.models import Host, Membership, Volunteer
from socialgrid.leaderboards.boards import (
    Board,
    Metric,
    Period,
    Standing,
    Subject,
    View,
    make_board,
)
from socialgrid.leaderboards.database import DatabaseRanking

NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)
USERS = Board(Subject.USERS)
USERS_RAC = Board(Subject.USERS, Metric.RAC)


@pytest.fixture
def ranking() -> DatabaseRanking:
    return DatabaseRanking()


def everyone(ranking, board) -> list[tuple[int, int, float]]:
    return [(s.rank, s.subject_id, s.score) for s in ranking.page(board, 0, 1000)]


def test_volunteers_are_ranked_by_credit_with_ties_going_to_the_older_account(
    ranking, volunteer_factory
):
    a = volunteer_factory(10.0)
    b = volunteer_factory(30.0)
    c = volunteer_factory(10.0)
    d = volunteer_factory(20.0)
    assert everyone(ranking, USERS) == [
        (1, b.id, 30.0),
        (2, d.id, 20.0),
        (3, a.id, 10.0),
        (4, c.id, 10.0),
    ]
    # A rank is the rows strictly ahead plus one, so it agrees with the page.
    for user, rank in ((b, 1), (d, 2), (a, 3), (c, 4)):
        assert ranking.standing(USERS, user.id).rank == rank
    assert ranking.size(USERS) == 4


def test_recent_average_credit_is_its_own_order(ranking, volunteer_factory):
    a = volunteer_factory(100.0, rac=1.0)
    b = volunteer_factory(5.0, rac=9.0)
    assert [s.subject_id for s in ranking.page(USERS_RAC, 0, 10)] == [b.id, a.id]
    assert ranking.standing(USERS_RAC, a.id) == Standing(2, a.id, 1.0)


def test_pages_are_slices_of_the_order(ranking, volunteer_factory):
    users = [volunteer_factory(float(100 - i)) for i in range(7)]
    page = ranking.page(USERS, 3, 3)
    assert [(s.rank, s.subject_id) for s in page] == [
        (4, users[3].id),
        (5, users[4].id),
        (6, users[5].id),
    ]
    assert ranking.page(USERS, 6, 3) == [Standing(7, users[6].id, 94.0)]
    assert ranking.page(USERS, 9, 3) == []


def test_volunteers_without_credit_are_not_ranked(ranking, volunteer_factory, user_factory):
    volunteer_factory(0.0)
    nobody = user_factory()
    assert ranking.page(USERS, 0, 10) == []
    assert ranking.standing(USERS, nobody.id) is None
    assert ranking.size(USERS) == 0


def test_banned_volunteers_are_neither_shown_nor_counted(ranking, volunteer_factory):
    top = volunteer_factory(50.0, banned=True)
    a = volunteer_factory(40.0)
    b = volunteer_factory(30.0)
    assert everyone(ranking, USERS) == [(1, a.id, 40.0), (2, b.id, 30.0)]
    assert ranking.standing(USERS, b.id).rank == 2
    assert ranking.standing(USERS, top.id) is None
    assert ranking.size(USERS) == 2


def test_a_project_board_ranks_memberships_and_leaves_out_the_banned(
    ranking, volunteer_factory, project_factory
):
    project, other = project_factory(), project_factory()
    banned = volunteer_factory(1.0, banned=True)
    a, b = volunteer_factory(1.0), volunteer_factory(1.0)
    Membership.objects.create(user=banned, project=project, total_credit=90.0, rac=9.0)
    Membership.objects.create(user=a, project=project, total_credit=10.0, rac=5.0)
    Membership.objects.create(user=b, project=project, total_credit=20.0, rac=1.0)
    Membership.objects.create(user=a, project=other, total_credit=99.0)
    board = Board(Subject.USERS, project_id=project.id)
    assert everyone(ranking, board) == [(1, b.id, 20.0), (2, a.id, 10.0)]
    assert ranking.standing(board, a.id).rank == 2
    assert ranking.standing(board, banned.id) is None
    assert ranking.size(board) == 2
    rac = Board(Subject.USERS, Metric.RAC, project_id=project.id)
    assert [s.subject_id for s in ranking.page(rac, 0, 10)] == [a.id, b.id]


def test_computers_of_banned_owners_and_banned_computers_are_left_out(
    ranking, volunteer_factory, user_factory
):
    banned_owner = volunteer_factory(banned=True)
    owner = volunteer_factory()
    h_banned_owner = Host.objects.create(user=banned_owner, total_credit=90.0)
    Host.objects.create(user=owner, total_credit=80.0, banned=True)
    h1 = Host.objects.create(user=owner, total_credit=10.0)
    unclaimed = Host.objects.create(user=None, total_credit=20.0)
    board = Board(Subject.HOSTS)
    assert everyone(ranking, board) == [(1, unclaimed.id, 20.0), (2, h1.id, 10.0)]
    assert ranking.standing(board, h1.id).rank == 2
    assert ranking.standing(board, h_banned_owner.id) is None
    assert ranking.size(board) == 2


def test_period_boards_count_only_their_day_or_week(
    ranking, grant_credit, user_factory, project_factory
):
    project = project_factory()
    a, b, c = user_factory(), user_factory(), user_factory()
    grant_credit(a, project, 50.0, now=NOW - timedelta(days=30))  # long ago
    grant_credit(a, project, 1.0, now=NOW)
    grant_credit(b, project, 3.0, now=NOW - timedelta(days=2))  # Monday of this week
    grant_credit(c, project, 2.0, now=NOW)
    today, _ = make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, now=NOW)
    week, _ = make_board(Subject.USERS, Metric.TOTAL, Period.WEEK, now=NOW)
    all_time = Board(Subject.USERS)
    assert everyone(ranking, today) == [(1, c.id, 2.0), (2, a.id, 1.0)]
    assert everyone(ranking, week) == [(1, b.id, 3.0), (2, c.id, 2.0), (3, a.id, 1.0)]
    assert everyone(ranking, all_time) == [(1, a.id, 51.0), (2, b.id, 3.0), (3, c.id, 2.0)]
    in_project, _ = make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, project.id, now=NOW)
    assert everyone(ranking, in_project) == [(1, c.id, 2.0), (2, a.id, 1.0)]
    assert ranking.standing(week, a.id).rank == 3


def test_period_boards_leave_out_the_banned(ranking, grant_credit, user_factory, project_factory):
    project = project_factory()
    cheat, honest = user_factory(), user_factory()
    grant_credit(cheat, project, 9.0, now=NOW)
    grant_credit(honest, project, 1.0, now=NOW)
    Volunteer.objects.filter(user=cheat).update(banned=True)
    today, _ = make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, now=NOW)
    assert everyone(ranking, today) == [(1, honest.id, 1.0)]
    assert ranking.standing(today, honest.id).rank == 1
    assert ranking.standing(today, cheat.id) is None
    assert ranking.size(today) == 1


def test_teams_are_ranked_by_their_credit(ranking, db):
    from socialgrid.teams.models import Team

    small = Team.objects.create(name="Small", slug="small", total_credit=5.0, rac=3.0)
    big = Team.objects.create(name="Big", slug="big", total_credit=50.0, rac=1.0)
    Team.objects.create(name="New", slug="new-team", total_credit=0.0)
    board = Board(Subject.TEAMS)
    assert everyone(ranking, board) == [(1, big.id, 50.0), (2, small.id, 5.0)]
    assert ranking.standing(Board(Subject.TEAMS, Metric.RAC), small.id).rank == 1


def test_without_a_teams_app_the_team_board_is_empty(ranking, db, monkeypatch):
    from socialgrid.leaderboards import database

    monkeypatch.setattr(database, "team_model", lambda: None)
    board = Board(Subject.TEAMS)
    assert ranking.page(board, 0, 10) == []
    assert ranking.standing(board, 1) is None
    assert ranking.size(board) == 0


def test_a_view_counts_the_rows_it_ranks(ranking, volunteer_factory):
    """The count beside a page is read with the page: a board seen empty and then
    credited is never "#1 of 0"."""
    assert ranking.view(USERS, 0, 10, None) == View(0, [], None)
    first = volunteer_factory(1.0)
    view = ranking.view(USERS, 0, 10, first.pk)
    assert view.size == 1
    assert view.mine == Standing(1, first.pk, 1.0)
    second = volunteer_factory(2.0)
    view = ranking.view(USERS, 0, 10, first.pk)
    assert (view.size, [s.subject_id for s in view.standings]) == (2, [second.pk, first.pk])
    assert view.mine.rank == 2


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_one_moment_sees_no_commit_made_after_its_first_read(volunteer_factory):
    """On PostgreSQL each statement of a plain transaction sees the commits before it; a
    page's reads share one snapshot instead."""
    import threading

    from django.db import connection

    from socialgrid.leaderboards.database import one_moment

    assert connection.vendor == "postgresql", "the integration level runs on PostgreSQL"
    volunteer_factory(1.0)
    ranking = DatabaseRanking()

    def commit_another() -> None:
        try:
            volunteer_factory(2.0)
        finally:
            connection.close()

    with one_moment():
        assert ranking.size(USERS) == 1
        writer = threading.Thread(target=commit_another)
        writer.start()
        writer.join(timeout=30)
        assert not writer.is_alive()
        assert ranking.size(USERS) == 1
        assert len(ranking.page(USERS, 0, 10)) == 1
    assert ranking.size(USERS) == 2
