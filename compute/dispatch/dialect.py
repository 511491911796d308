"""The few places where the dispatch path's SQL differs between PostgreSQL and SQLite.

Every statement of the path is written once, with a handful of slots this module fills:

- a *row set*: many rows handed to one statement as a common table expression. PostgreSQL
  gets one array per column (``unnest(%s::bigint[], %s::text[])``), so the statement text
  never changes with the number of rows and is prepared once per connection; SQLite gets a
  ``VALUES`` list.
- an *id list*, written ``WHERE id {ids}``: ``= ANY(%s::bigint[])`` on PostgreSQL (one array
  parameter, which the planner turns into index scans even in a generic plan, where
  ``IN (SELECT unnest(…))`` would be guessed at a hundred rows and may scan the table), and
  ``IN (%s, …)`` with one placeholder per id on SQLite.
- ``{json}`` and ``{text}`` casts, ``{lock}`` and ``{lock_skip}`` (row locks, waiting or
  skipping those held: SQLite has one writer at a time and needs none), ``{greatest}`` /
  ``{least}``.

PostgreSQL statements run on the raw psycopg connection under Django's transaction, with
server-side binding and prepared statements (no client-side quoting of large arrays, no
re-planning); SQLite statements run on Django's cursor. Either way the statement runs in
the caller's transaction on the calling thread's connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection

# Column types of row sets, as PostgreSQL names them.
Columns = Sequence[tuple[str, str]]


class Dialect:
    name = ""
    json = ""
    text = ""
    lock = ""
    lock_skip = ""
    greatest = "MAX"
    least = "MIN"

    def rows(self, name: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> tuple[str, list]:
        raise NotImplementedError

    def ids(self, values: Iterable[int]) -> tuple[str, list]:
        """The condition ``column {ids}`` holding for these ids, and its parameters."""
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def dt(self, value: datetime) -> Any:
        return value

    def read_dt(self, value: Any) -> datetime | None:
        return value

    def read_date(self, value: Any) -> date:
        return value

    def format(self, sql: str, **parts: str) -> str:
        """``sql`` with the dialect's slots filled, and ``parts`` (row sets, id lists)."""
        return sql.format(
            **parts,
            json=self.json,
            text=self.text,
            lock=self.lock,
            lock_skip=self.lock_skip,
            greatest=self.greatest,
            least=self.least,
        )


class Postgres(Dialect):
    name = "postgresql"
    json = "::jsonb"
    text = "::text"
    lock = "FOR NO KEY UPDATE"
    lock_skip = "FOR NO KEY UPDATE SKIP LOCKED"
    greatest = "GREATEST"
    least = "LEAST"

    def rows(self, name: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> tuple[str, list]:
        names = ", ".join(c for c, _ in columns)
        arrays = ", ".join(f"%s::{t}[]" for _, t in columns)
        params = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns]
        return f"{name}({names}) AS (SELECT * FROM unnest({arrays}))", params

    def ids(self, values: Iterable[int]) -> tuple[str, list]:
        return "= ANY(%s::bigint[])", [list(values)]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        import psycopg

        connection.ensure_connection()
        # Django's wrapper turns psycopg's errors into Django's (what retries and the
        # writer look for) and marks the connection as having seen one.
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=_prepare())
            return cursor.fetchall() if cursor.description else []


class Sqlite(Dialect):
    name = "sqlite"

    def rows(self, name: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> tuple[str, list]:
        names = ", ".join(c for c, _ in columns)
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        params = [self._param(v) for row in rows for v in row]
        return f"{name}({names}) AS (VALUES {', '.join([one] * len(rows))})", params

    def ids(self, values: Iterable[int]) -> tuple[str, list]:
        values = list(values)
        return "IN (" + ", ".join(["%s"] * len(values)) + ")" if values else "IN (NULL)", values

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, [self._param(p) for p in params])
            return cursor.fetchall() if cursor.description else []

    def _param(self, value: Any) -> Any:
        return self.dt(value) if isinstance(value, datetime) else value

    def dt(self, value: datetime) -> Any:
        return connection.ops.adapt_datetimefield_value(value)

    def read_dt(self, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def read_date(self, value: Any) -> date:
        return value if isinstance(value, date) else date.fromisoformat(value)


@cache
def _prepare() -> bool:
    """Prepared statements, unless the deployment turned them off (a connection pooler in
    transaction mode that cannot carry them)."""
    return bool(settings.DB_PREPARED_STATEMENTS)


_DIALECTS = {"postgresql": Postgres(), "sqlite": Sqlite()}


def current() -> Dialect:
    """The dialect of this thread's database connection."""
    try:
        return _DIALECTS[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"no dispatch SQL for {connection.vendor}") from None
