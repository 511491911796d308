"""The Redis backend: a cache of the database that must rank exactly like it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.urls import reverse
from django.utils import timezone

import pytest

from compute.models import Host, Membership, Volunteer
from socialgrid.leaderboards.boards import Board, Metric, Period, Subject, make_board, week_start
from socialgrid.leaderboards.database import DatabaseRanking
from socialgrid.leaderboards.sorted_sets import cached_boards

pytestmark = pytest.mark.integration

USERS = Board(Subject.USERS)


def everyone(ranking, board) -> list[tuple[int, int, float]]:
    return [(s.rank, s.subject_id, s.score) for s in ranking.page(board, 0, 1000)]


@pytest.fixture
def populated(volunteer_factory, project_factory, grant_credit):
    """Ties, a ban, memberships, computers and today's credit."""
    project = project_factory()
    users = [volunteer_factory(float(c), rac=float(c % 7) + 0.25) for c in (5, 9, 5, 7, 9, 1)]
    volunteer_factory(100.0, rac=50.0, banned=True)
    for i, user in enumerate(users):
        Membership.objects.create(user=user, project=project, total_credit=10.0 - i, rac=i + 0.5)
        Host.objects.create(user=user, total_credit=float(i % 3) + 1, rac=1.0)
    grant_credit(users[1], project, 2.0)
    grant_credit(users[2], project, 2.0)
    grant_credit(users[3], project, 4.0)
    return project, users


def boards_of(project) -> list[Board]:
    now = timezone.now()
    return [
        USERS,
        Board(Subject.USERS, Metric.RAC),
        Board(Subject.USERS, project_id=project.id),
        Board(Subject.USERS, Metric.RAC, project_id=project.id),
        Board(Subject.HOSTS),
        make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, now=now)[0],
        make_board(Subject.USERS, Metric.TOTAL, Period.WEEK, project.id, now=now)[0],
    ]


def test_a_rebuilt_cache_ranks_exactly_like_the_database(redis_ranking, populated):
    project, users = populated
    sizes = redis_ranking.rebuild(cached_boards(timezone.now()))
    assert sizes[USERS.key] == 6
    database = DatabaseRanking()
    for board in boards_of(project):
        assert everyone(redis_ranking, board) == everyone(database, board), board
        assert redis_ranking.size(board) == database.size(board), board
        assert redis_ranking.page(board, 2, 2) == database.page(board, 2, 2), board
        for user in users:
            subject_id = user.id if board.subject == Subject.USERS else user.hosts.get().id
            assert redis_ranking.standing(board, subject_id) == database.standing(
                board, subject_id
            ), board
            assert redis_ranking.view(board, 2, 2, subject_id) == database.view(
                board, 2, 2, subject_id
            ), board
        assert redis_ranking.view(board, 0, 3, None) == database.view(board, 0, 3, None), board


def test_a_board_not_built_is_answered_by_the_database(redis_ranking, populated):
    _project, users = populated
    assert everyone(redis_ranking, USERS) == everyone(DatabaseRanking(), USERS)
    assert redis_ranking.standing(USERS, users[0].id).rank == 5
    # Built, then the cache expires (its rebuilds stopped): the database answers again.
    redis_ranking.rebuild([USERS])
    Volunteer.objects.filter(user=users[0]).update(total_credit=1000.0)
    assert redis_ranking.standing(USERS, users[0].id).rank == 5
    redis_ranking.redis.delete(redis_ranking._marker(USERS))
    assert redis_ranking.standing(USERS, users[0].id).rank == 1


def test_teams_and_friends_are_always_counted_in_the_database(redis_ranking, db):
    assert redis_ranking.key(Board(Subject.TEAMS)) is None
    assert redis_ranking.key(Board(Subject.FRIENDS)) is None


def test_a_grant_freshens_the_cache_after_it_commits(
    redis_ranking, populated, grant_credit, django_capture_on_commit_callbacks
):
    project, users = populated
    redis_ranking.rebuild(cached_boards(timezone.now()))
    last = users[5]
    host = last.hosts.get()
    with django_capture_on_commit_callbacks(execute=True):
        grant_credit(last, project, 50.0, host=host)
    database = DatabaseRanking()
    for board in boards_of(project):
        assert everyone(redis_ranking, board) == everyone(database, board), board
    assert redis_ranking.standing(USERS, last.id).rank == 1


def test_an_older_total_arriving_late_does_not_overwrite_a_newer_one(
    redis_ranking, populated, django_capture_on_commit_callbacks
):
    project, users = populated
    redis_ranking.rebuild([USERS])
    user = users[0]
    Volunteer.objects.filter(user=user).update(total_credit=80.0)
    redis_ranking.freshen({user.id}, {project.id}, set(), timezone.now().date())
    Volunteer.objects.filter(user=user).update(total_credit=60.0)  # a stale read
    redis_ranking.freshen({user.id}, {project.id}, set(), timezone.now().date())
    assert redis_ranking.standing(USERS, user.id).score == 80.0


def test_a_ban_takes_the_volunteer_and_their_computers_off_the_cache_at_once(
    redis_ranking, populated, django_capture_on_commit_callbacks
):
    project, users = populated
    redis_ranking.rebuild(cached_boards(timezone.now()))
    cheat = users[1]
    host = cheat.hosts.get()
    with django_capture_on_commit_callbacks(execute=True):
        volunteer = Volunteer.objects.get(user=cheat)
        volunteer.banned = True
        volunteer.save()
    for board in boards_of(project):
        subject_id = host.id if board.subject == Subject.HOSTS else cheat.id
        assert redis_ranking.standing(board, subject_id) is None, board
    other_host = users[0].hosts.get()
    with django_capture_on_commit_callbacks(execute=True):
        other_host.banned = True
        other_host.save()
    assert redis_ranking.standing(Board(Subject.HOSTS), other_host.id) is None


def test_period_boards_expire_after_their_period(redis_ranking, populated):
    now = timezone.now()
    today, _ = make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, now=now)
    redis_ranking.rebuild([today, USERS])
    ttl = redis_ranking.redis.ttl(redis_ranking.key(today))
    assert 0 < ttl <= 2 * 86400
    assert redis_ranking.redis.ttl(redis_ranking.key(USERS)) == -1


def test_the_refresh_task_rebuilds_the_cache_and_prunes_old_rollups(
    redis_ranking, populated, grant_credit
):
    from socialgrid.leaderboards.models import DailyCredit, WeeklyCredit
    from socialgrid.leaderboards.tasks import refresh_leaderboards

    project, users = populated
    # Days are kept 35 days and weeks 12: credit 50 days old loses its daily rows (the
    # project's and the all-projects one) and keeps its weekly rows; credit 120 days old
    # loses both.
    now = datetime.now(UTC)
    grant_credit(users[0], project, 1.0, now=now - timedelta(days=50))
    grant_credit(users[0], project, 1.0, now=now - timedelta(days=120))
    result = refresh_leaderboards()
    assert result["pruned"] == 6
    assert result[USERS.key] == 6
    assert not DailyCredit.objects.filter(day__lt=now.date() - timedelta(days=35))
    kept = WeeklyCredit.objects.filter(user=users[0], week__lt=now.date() - timedelta(days=40))
    assert sorted(kept.values_list("week", "project_id"), key=str) == sorted(
        [(week_start((now - timedelta(days=50)).date()), p) for p in (project.id, None)], key=str
    )
    assert redis_ranking.redis.exists(redis_ranking._marker(USERS))


def test_the_page_reads_the_cache(redis_ranking, populated, client):
    _project, users = populated
    redis_ranking.rebuild([USERS])
    # Changed behind the cache's back (no grant): the page still shows the cached order.
    Volunteer.objects.filter(user=users[5]).update(total_credit=999.0)
    client.force_login(users[5])
    html = client.get(reverse("leaderboards:index")).content.decode()
    assert "#6</strong> of 6" in html
