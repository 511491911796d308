"""Boards cached in Redis sorted sets: O(log n) ranks and pages at any depth.

One sorted set per board (``sg:lb:users:total:all:all``, ``…:users:total:p7:d20250102``):
the member is the subject's id as 16 hex digits and the score is the *negated* credit, so
``ZRANGE``/``ZRANK`` in ascending order give credit descending with ties in member order,
i.e. by the lower id — the database's order exactly, so both backends give one user the
same rank. ``ZCARD`` is the board's size.

The sets are a cache; the database stays the truth:

- :meth:`RedisRanking.rebuild` (the periodic ``refresh_leaderboards`` task) streams each
  board's visible rows into a temporary key and RENAMEs it over the live one, then marks
  the board built (a key with a TTL of ``REDIS_MAX_AGE_SECONDS``). A board that is not
  marked — never built, flushed, or its rebuilds stopped — is answered by the database, as
  are the boards not cached at all (teams: thousands of rows, counted in microseconds;
  friends: a handful, ranked in Python).
- Between rebuilds, each grant writes its volunteers', memberships' and computers' new
  values after commit (:func:`freshen_after_commit`), read back from the database, so a
  replayed or reordered write carries a value that was true: totals and period credit only
  grow, so they use ``ZADD LT`` (lower negated score only) and an older value arriving late
  never overwrites a newer one; RAC is set as read. A ban removes the subject at once.
- Anything missed (Redis down during a grant, a write racing the RENAME) is repaired by
  the next rebuild.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Q

from compute.credit import Grant
from compute.models import Host, Membership, Project, Volunteer
from socialgrid.leaderboards import app_settings
from socialgrid.leaderboards.boards import (
    Board,
    Metric,
    Period,
    Standing,
    Subject,
    View,
    week_start,
)
from socialgrid.leaderboards.database import DatabaseRanking, banned_user_ids, source_for
from socialgrid.leaderboards.models import DailyCredit, WeeklyCredit

log = logging.getLogger(__name__)

CHUNK = 10_000
TEMP_TTL = 3600


def member(subject_id: int) -> str:
    return f"{subject_id:016x}"


def expires_at(board: Board) -> int | None:
    """When a period board's key may go: a day after its period ended."""
    if board.start is None:
        return None
    days = 1 if board.period == Period.TODAY else 7
    end = datetime.combine(board.start + timedelta(days=days + 1), datetime.min.time(), UTC)
    return int(end.timestamp())


class RedisRanking:
    def __init__(self, url: str, prefix: str = "sg:lb") -> None:
        import redis

        self.redis = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
        )
        self.errors = (redis.RedisError,)
        self.prefix = prefix
        self.database = DatabaseRanking()

    def key(self, board: Board) -> str | None:
        if board.subject not in (Subject.USERS, Subject.HOSTS):
            return None
        return f"{self.prefix}:{board.key}"

    def _marker(self, board: Board) -> str:
        return f"{self.prefix}:built:{board.key}"

    def _read(self, board: Board, commands) -> list | None:
        """Run ``commands(pipe, key)`` if the board is built; None: ask the database."""
        key = self.key(board)
        if key is None:
            return None
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(self._marker(board))
            commands(pipe, key)
            built, *results = pipe.execute()
        except self.errors:
            log.warning("leaderboard cache unavailable; counting in the database", exc_info=True)
            return None
        return results if built else None

    def page(self, board: Board, offset: int, limit: int) -> list[Standing]:
        if limit <= 0:
            return []
        results = self._read(
            board, lambda pipe, key: pipe.zrange(key, offset, offset + limit - 1, withscores=True)
        )
        if results is None:
            return self.database.page(board, offset, limit)
        return _standings(offset, results[0])

    def standing(self, board: Board, subject_id: int) -> Standing | None:
        def commands(pipe, key: str) -> None:
            pipe.zrank(key, member(subject_id))
            pipe.zscore(key, member(subject_id))

        results = self._read(board, commands)
        if results is None:
            return self.database.standing(board, subject_id)
        return _own(subject_id, *results)

    def size(self, board: Board) -> int:
        results = self._read(board, lambda pipe, key: pipe.zcard(key))
        return self.database.size(board) if results is None else results[0]

    def view(self, board: Board, offset: int, limit: int, subject_id: int | None) -> View:
        """Size, page and the viewer's place from one MULTI, so from one moment of the set."""
        key = self.key(board)
        if key is None or limit <= 0:
            return self.database.view(board, offset, limit, subject_id)
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.exists(self._marker(board))
            pipe.zcard(key)
            pipe.zrange(key, offset, offset + limit - 1, withscores=True)
            if subject_id is not None:
                pipe.zrank(key, member(subject_id))
                pipe.zscore(key, member(subject_id))
            built, size, rows, *mine = pipe.execute()
        except self.errors:
            log.warning("leaderboard cache unavailable; counting in the database", exc_info=True)
            built = False
        if not built:
            return self.database.view(board, offset, limit, subject_id)
        own = _own(subject_id, *mine) if mine else None
        return View(size, _standings(offset, rows), own)

    def scores_of(self, board: Board, subject_ids: set[int]) -> dict[int, float]:
        return self.database.scores_of(board, subject_ids)

    # --- Keeping the cache -------------------------------------------------------------

    def rebuild(self, boards: Iterable[Board]) -> dict[str, int]:
        """Replace each board's set with the database's rows; returns the sizes."""
        sizes = {}
        for board in boards:
            key, source = self.key(board), source_for(board)
            if key is None or source is None:
                continue
            temp = f"{key}:rebuilding:{secrets.token_hex(4)}"
            rows = source.visible().order_by().values_list(source.id_field, source.score_field)
            count, batch = 0, {}
            for subject_id, score in rows.iterator(chunk_size=CHUNK):
                batch[member(subject_id)] = -score
                if len(batch) >= CHUNK:
                    count += self._add(temp, batch)
            count += self._add(temp, batch)
            pipe = self.redis.pipeline(transaction=True)
            if count:
                pipe.rename(temp, key)
                when = expires_at(board)
                if when:
                    pipe.expireat(key, when)
                else:
                    pipe.persist(key)
            else:
                pipe.delete(key)
            pipe.set(
                self._marker(board), int(time.time()), ex=app_settings.get("REDIS_MAX_AGE_SECONDS")
            )
            pipe.execute()
            sizes[board.key] = count
        return sizes

    def _add(self, key: str, batch: dict[str, float]) -> int:
        if not batch:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(key, batch)
        pipe.expire(key, TEMP_TTL)  # an interrupted rebuild leaves nothing behind for long
        pipe.execute()
        n = len(batch)
        batch.clear()
        return n

    def freshen(
        self, user_ids: set[int], project_ids: set[int], host_ids: set[int], day: date
    ) -> None:
        """Write the new values of what a grant changed (read back from the database)."""
        banned = banned_user_ids()
        pipe = self.redis.pipeline(transaction=False)
        for user_id, total, rac in Volunteer.objects.filter(
            user_id__in=user_ids, banned=False
        ).values_list("user_id", "total_credit", "rac"):
            self._write(pipe, Board(Subject.USERS, Metric.TOTAL), user_id, total, grows=True)
            self._write(pipe, Board(Subject.USERS, Metric.RAC), user_id, rac)
        # Only public projects have boards.
        memberships = (
            Membership.objects.filter(
                user_id__in=user_ids, project_id__in=project_ids, project__is_public=True
            )
            .exclude(user_id__in=banned)
            .values_list("user_id", "project_id", "total_credit", "rac")
        )
        for user_id, project_id, total, rac in memberships:
            board = Board(Subject.USERS, Metric.TOTAL, project_id=project_id)
            self._write(pipe, board, user_id, total, grows=True)
            self._write(pipe, Board(Subject.USERS, Metric.RAC, project_id=project_id), user_id, rac)
        hosts = (
            Host.objects.filter(id__in=host_ids, banned=False)
            .exclude(user_id__in=banned)
            .values_list("id", "total_credit", "rac")
        )
        for host_id, total, rac in hosts:
            self._write(pipe, Board(Subject.HOSTS, Metric.TOTAL), host_id, total, grows=True)
            self._write(pipe, Board(Subject.HOSTS, Metric.RAC), host_id, rac)
        for model, column, period, start in (
            (DailyCredit, "day", Period.TODAY, day),
            (WeeklyCredit, "week", Period.WEEK, week_start(day)),
        ):
            rows = (
                model.objects.filter(user_id__in=user_ids, **{column: start})
                .filter(Q(project__isnull=True) | Q(project__is_public=True))
                .exclude(user_id__in=banned)
                .values_list("user_id", "project_id", "amount")
            )
            for user_id, project_id, amount in rows:
                board = Board(Subject.USERS, Metric.TOTAL, period, project_id, start)
                self._write(pipe, board, user_id, amount, grows=True)
        pipe.execute()

    def _write(
        self, pipe, board: Board, subject_id: int, score: float, *, grows: bool = False
    ) -> None:
        key = self.key(board)
        if score > 0:
            pipe.zadd(key, {member(subject_id): -score}, lt=grows)
        else:
            pipe.zrem(key, member(subject_id))
        when = expires_at(board)
        if when:
            pipe.expireat(key, when)

    def forget(self, subject: str, subject_ids: Sequence[int]) -> None:
        """Take banned subjects off every cached board of that kind at once."""
        if not subject_ids:
            return
        members = [member(i) for i in subject_ids]
        pipe = self.redis.pipeline(transaction=False)
        for key in self.redis.scan_iter(match=f"{self.prefix}:{subject}:*", count=1000):
            pipe.zrem(key, *members)
        pipe.execute()

    def clear(self) -> None:
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        if keys:
            self.redis.delete(*keys)


def _standings(offset: int, rows: list[tuple[bytes, float]]) -> list[Standing]:
    """ZRANGE's members (hex ids) and scores (negated, so the highest ranks first)."""
    return [Standing(offset + i + 1, int(m, 16), -score) for i, (m, score) in enumerate(rows)]


def _own(subject_id: int, rank: int | None, score: float | None) -> Standing | None:
    """ZRANK's and ZSCORE's answers for one subject: None when it is not on the board."""
    return None if rank is None else Standing(rank + 1, subject_id, -score)


def cached_boards(now: datetime) -> list[Board]:
    """Every board the Redis backend keeps: volunteers overall and in each public project
    (all time, RAC, today, this week) and computers."""
    project_ids = list(Project.objects.filter(is_public=True).values_list("id", flat=True))
    boards = []
    for metric in (Metric.TOTAL, Metric.RAC):
        boards.append(Board(Subject.USERS, metric))
        boards.append(Board(Subject.HOSTS, metric))
        boards += [Board(Subject.USERS, metric, project_id=p) for p in project_ids]
    day = now.astimezone(UTC).date()
    for period, start in ((Period.TODAY, day), (Period.WEEK, week_start(day))):
        boards += [
            Board(Subject.USERS, Metric.TOTAL, period, p, start) for p in [None, *project_ids]
        ]
    return boards


def _redis_ranking() -> RedisRanking | None:
    from socialgrid.leaderboards.backends import get_ranking

    ranking = get_ranking()
    return ranking if isinstance(ranking, RedisRanking) else None


def freshen_after_commit(grants: Sequence[Grant], day: date) -> None:
    """After the grant commits, write its new values into the cached boards."""
    if app_settings.backend_name() != "redis":
        return
    user_ids = {g.user_id for g in grants if g.user_id is not None}
    project_ids = {g.project_id for g in grants}
    host_ids = {g.host_id for g in grants if g.host_id is not None}
    transaction.on_commit(partial(_freshen, user_ids, project_ids, host_ids, day), robust=True)


def _freshen(user_ids: set[int], project_ids: set[int], host_ids: set[int], day: date) -> None:
    ranking = _redis_ranking()
    if ranking is None:
        return
    try:
        ranking.freshen(user_ids, project_ids, host_ids, day)
    except ranking.errors:
        log.warning("could not freshen the leaderboard cache; the next rebuild will", exc_info=True)


def forget_banned_volunteer(sender, instance: Volunteer, update_fields=None, **kwargs) -> None:
    """post_save of Volunteer: a ban takes the volunteer and their computers off the boards."""
    if not instance.banned or (update_fields is not None and "banned" not in update_fields):
        return
    if app_settings.backend_name() != "redis":
        return
    user_id = instance.user_id
    transaction.on_commit(partial(_forget_volunteer, user_id), robust=True)


def forget_banned_host(sender, instance: Host, update_fields=None, **kwargs) -> None:
    if not instance.banned or (update_fields is not None and "banned" not in update_fields):
        return
    if app_settings.backend_name() != "redis":
        return
    transaction.on_commit(partial(_forget, Subject.HOSTS, [instance.id]), robust=True)


def _forget_volunteer(user_id: int) -> None:
    _forget(Subject.USERS, [user_id])
    _forget(Subject.HOSTS, list(Host.objects.filter(user_id=user_id).values_list("id", flat=True)))


def _forget(subject: str, subject_ids: list[int]) -> None:
    ranking = _redis_ranking()
    if ranking is None:
        return
    try:
        ranking.forget(subject, subject_ids)
    except ranking.errors:
        log.warning("could not take a ban off the leaderboard cache", exc_info=True)
