from __future__ import annotations

from datetime import UTC, date, datetime

from socialgrid.leaderboards.boards import (
    HOSTS_ARE_GLOBAL,
    RAC_HAS_NO_PERIOD,
    TEAMS_ARE_GLOBAL,
    Board,
    Metric,
    Period,
    Subject,
    make_board,
    week_start,
)

SUNDAY_NIGHT = datetime(2025, 1, 12, 23, 59, tzinfo=UTC)


def test_a_week_starts_on_monday():
    assert week_start(date(2025, 1, 6)) == date(2025, 1, 6)
    assert week_start(date(2025, 1, 12)) == date(2025, 1, 6)
    assert week_start(date(2025, 1, 13)) == date(2025, 1, 13)


def test_period_boards_start_on_the_utc_day_or_monday():
    today, notes = make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, now=SUNDAY_NIGHT)
    assert (today.start, notes) == (date(2025, 1, 12), [])
    week, _ = make_board(Subject.USERS, Metric.TOTAL, Period.WEEK, 3, now=SUNDAY_NIGHT)
    assert week == Board(Subject.USERS, Metric.TOTAL, Period.WEEK, 3, date(2025, 1, 6))
    assert week.key == "users:total:p3:w20250106"
    assert Board().key == "users:total:all:all"


def test_rac_has_no_period():
    board, notes = make_board(Subject.USERS, Metric.RAC, Period.TODAY, now=SUNDAY_NIGHT)
    assert board == Board(Subject.USERS, Metric.RAC)
    assert notes == [RAC_HAS_NO_PERIOD]


def test_computers_and_teams_have_no_project_or_period():
    board, notes = make_board(Subject.HOSTS, Metric.TOTAL, Period.WEEK, 3, now=SUNDAY_NIGHT)
    assert board == Board(Subject.HOSTS)
    assert notes == [HOSTS_ARE_GLOBAL]
    board, notes = make_board(Subject.TEAMS, Metric.RAC, Period.ALL, 3, now=SUNDAY_NIGHT)
    assert board == Board(Subject.TEAMS, Metric.RAC)
    assert notes == [TEAMS_ARE_GLOBAL]


def test_friends_boards_are_slices_of_the_volunteer_boards():
    board, notes = make_board(Subject.FRIENDS, Metric.TOTAL, Period.TODAY, 3, now=SUNDAY_NIGHT)
    assert notes == []
    assert board.as_users() == Board(
        Subject.USERS, Metric.TOTAL, Period.TODAY, 3, date(2025, 1, 12)
    )
