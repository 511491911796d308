"""Boards answered by the database: the truth, and the backend of the embedded mode.

Every board is one table filtered to positive scores and ordered by (score descending, id),
the order of an index built for it (migration 0002 on the engine's tables, the roll-ups'
own ``*_rank`` indexes):

- a page is an index range, ``ORDER BY score DESC, id LIMIT 50 OFFSET k``;
- a rank is ``1 +`` the rows strictly ahead: ``count(score > s) + count(score = s AND id <
  mine)``, two index-only counts (two plain ranges plan better than their OR);
- bans: a banned volunteer's ``Volunteer`` row is outside the partial index, so the users
  board needs nothing more; where the ban lives on another table (memberships, roll-ups,
  computers' owners), the rows of the few banned volunteers are subtracted from a count
  (found through the small ``banned`` index) and anti-joined from a page.

A rank costs O(rows ahead): fine for the top and for the thousands of the embedded mode,
some tens of milliseconds deep in a million rows (bench/leaderboard.py has the figures),
which is why the Redis backend exists. A page's count ("of N", the page count), rows and
the viewer's rank are read in one snapshot (``one_moment``), never a cached count beside
live rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Q, QuerySet

from compute.models import Host, Membership, Volunteer
from socialgrid.leaderboards.boards import Board, Metric, Period, Standing, Subject, View
from socialgrid.leaderboards.models import DailyCredit, WeeklyCredit

SCORE = {Metric.TOTAL: "total_credit", Metric.RAC: "rac"}


@dataclass(frozen=True)
class Source:
    """A board's rows in the database."""

    rows: QuerySet  # positive scores; bans that live on the same table already left out
    id_field: str  # the ranked subject's id
    score_field: str
    owner_field: str | None = None  # a volunteer whose ban hides the row, if checked elsewhere

    def ahead_of(self, score: float, subject_id: int) -> Q:
        return Q(**{f"{self.score_field}__gt": score}) | Q(
            **{self.score_field: score, f"{self.id_field}__lt": subject_id}
        )

    def visible(self) -> QuerySet:
        if self.owner_field is None:
            return self.rows
        return self.rows.exclude(**{f"{self.owner_field}__in": banned_user_ids()})

    def ordered(self) -> QuerySet:
        return self.visible().order_by(f"-{self.score_field}", self.id_field)


def banned_user_ids() -> QuerySet:
    return Volunteer.objects.filter(banned=True).values("user_id")


def team_model():
    """socialgrid.teams' Team, or None while that app has no model (the board is empty)."""
    try:
        return apps.get_model("teams", "Team")
    except LookupError:
        return None


def source_for(board: Board) -> Source | None:
    """Where ``board`` is in the database (None: nowhere, the teams app is not there)."""
    if board.period != Period.ALL:
        model, column = (
            (DailyCredit, "day") if board.period == Period.TODAY else (WeeklyCredit, "week")
        )
        rows = model.objects.filter(
            project_id=board.project_id, amount__gt=0, **{column: board.start}
        )
        return Source(rows, "user_id", "amount", owner_field="user_id")
    score = SCORE[Metric(board.metric)]
    positive = {f"{score}__gt": 0}
    if board.subject == Subject.HOSTS:
        return Source(Host.objects.filter(banned=False, **positive), "id", score, "user_id")
    if board.subject == Subject.TEAMS:
        team = team_model()
        if team is None:
            return None
        return Source(team.objects.filter(**positive), "id", score)
    if board.project_id is not None:
        rows = Membership.objects.filter(project_id=board.project_id, **positive)
        return Source(rows, "user_id", score, owner_field="user_id")
    return Source(Volunteer.objects.filter(banned=False, **positive), "user_id", score)


@contextmanager
def one_moment() -> Iterator[None]:
    """The reads inside see the database as of one moment: a read-only repeatable-read
    transaction on PostgreSQL (where each statement of a plain transaction would see the
    commits before it), SQLite's own transaction elsewhere. Inside a transaction someone
    else opened, that transaction decides."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


class DatabaseRanking:
    """Pages, ranks and sizes counted in the database."""

    def view(self, board: Board, offset: int, limit: int, subject_id: int | None) -> View:
        with one_moment():
            return View(
                self.size(board),
                self.page(board, offset, limit),
                None if subject_id is None else self.standing(board, subject_id),
            )

    def page(self, board: Board, offset: int, limit: int) -> list[Standing]:
        source = source_for(board)
        if source is None or limit <= 0:
            return []
        rows = source.ordered().values_list(source.id_field, source.score_field)
        return [
            Standing(offset + i + 1, subject_id, score)
            for i, (subject_id, score) in enumerate(rows[offset : offset + limit])
        ]

    def standing(self, board: Board, subject_id: int) -> Standing | None:
        source = source_for(board)
        if source is None:
            return None
        score = (
            source.visible()
            .filter(**{source.id_field: subject_id})
            .values_list(source.score_field, flat=True)
            .first()
        )
        if score is None:
            return None
        ahead = (
            source.rows.filter(**{f"{source.score_field}__gt": score}).count()
            + source.rows.filter(
                **{source.score_field: score, f"{source.id_field}__lt": subject_id}
            ).count()
        )
        if source.owner_field is not None:
            ahead -= (
                source.rows.filter(source.ahead_of(score, subject_id))
                .filter(**{f"{source.owner_field}__in": banned_user_ids()})
                .count()
            )
        return Standing(ahead + 1, subject_id, score)

    def size(self, board: Board) -> int:
        source = source_for(board)
        if source is None:
            return 0
        size = source.rows.count()
        if source.owner_field is not None:
            size -= source.rows.filter(**{f"{source.owner_field}__in": banned_user_ids()}).count()
        return size

    def scores_of(self, board: Board, subject_ids: set[int]) -> dict[int, float]:
        """The scores of a few subjects (a friends board), banned ones left out."""
        source = source_for(board)
        if source is None or not subject_ids:
            return {}
        return dict(
            source.visible()
            .filter(**{f"{source.id_field}__in": subject_ids})
            .values_list(source.id_field, source.score_field)
        )
