"""What a leaderboard is: who is ranked, by what, over which time, in which project.

Not every combination makes sense; :func:`make_board` turns any request into the nearest
board that does and says why it changed something, so the page can explain it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import models


class Subject(models.TextChoices):
    USERS = "users", "Volunteers"
    TEAMS = "teams", "Teams"
    FRIENDS = "friends", "Friends"
    HOSTS = "hosts", "Computers"


class Metric(models.TextChoices):
    TOTAL = "total", "Total credit"
    RAC = "rac", "Recent average credit"


class Period(models.TextChoices):
    ALL = "all", "All time"
    WEEK = "week", "This week"
    TODAY = "today", "Today"


@dataclass(frozen=True)
class Board:
    subject: str = Subject.USERS
    metric: str = Metric.TOTAL
    period: str = Period.ALL
    project_id: int | None = None
    # The first day the board counts: the UTC day, or the Monday of the UTC week.
    start: date | None = None

    @property
    def key(self) -> str:
        """A stable name for the board (the Redis key)."""
        scope = "all" if self.project_id is None else f"p{self.project_id}"
        if self.period == Period.ALL:
            when = "all"
        else:
            assert self.start is not None
            when = f"{self.period[0]}{self.start:%Y%m%d}"
        return f"{self.subject}:{self.metric}:{scope}:{when}"

    @property
    def ranks_users(self) -> bool:
        return self.subject in (Subject.USERS, Subject.FRIENDS)

    def as_users(self) -> Board:
        """The all-volunteers board a friends board is a slice of."""
        return Board(Subject.USERS, self.metric, self.period, self.project_id, self.start)


@dataclass(frozen=True)
class Standing:
    """One place on a board: rank 1 is the top; ties are broken by the lower id."""

    rank: int
    subject_id: int
    score: float


@dataclass(frozen=True)
class View:
    """What one page of a board shows, read at one moment: the board's size (the "of N"
    and the page count), the page's standings and the viewer's own, so a rank is never
    beyond the count beside it."""

    size: int
    standings: list[Standing]
    mine: Standing | None = None


def utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def period_start(period: str, now: datetime) -> date | None:
    if period == Period.TODAY:
        return utc_day(now)
    if period == Period.WEEK:
        return week_start(utc_day(now))
    return None


RAC_HAS_NO_PERIOD = (
    "Recent average credit already measures recent work (it halves after a week without "
    "new credit), so it has no “today” or “this week” view; showing it as of now."
)
HOSTS_ARE_GLOBAL = (
    "Computers are ranked by their credit across all projects and all time: credit per "
    "project and per day is kept for volunteers, not for each computer."
)
TEAMS_ARE_GLOBAL = (
    "Teams are ranked by their credit across all projects and all time; for a race over "
    "a few days, see team challenges."
)


def make_board(
    subject: str,
    metric: str = Metric.TOTAL,
    period: str = Period.ALL,
    project_id: int | None = None,
    *,
    now: datetime,
) -> tuple[Board, list[str]]:
    """The nearest meaningful board to the one asked for, and notes on what was changed."""
    notes: list[str] = []
    if subject in (Subject.HOSTS, Subject.TEAMS):
        if project_id is not None or period != Period.ALL:
            notes.append(HOSTS_ARE_GLOBAL if subject == Subject.HOSTS else TEAMS_ARE_GLOBAL)
        project_id, period = None, Period.ALL
    if metric == Metric.RAC and period != Period.ALL:
        notes.append(RAC_HAS_NO_PERIOD)
        period = Period.ALL
    return Board(subject, metric, period, project_id, period_start(period, now)), notes
