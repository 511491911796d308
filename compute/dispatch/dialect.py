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

import weakref
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

    def texts(self, values: Iterable[str]) -> tuple[str, list]:
        """The same for text values."""
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def execute_all(
        self, statements: Sequence[tuple[str, Sequence[Any]]], *, commit: bool = False
    ) -> list[list[tuple]]:
        """Statements that need nothing from each other's results; the rows of each.

        ``commit``: the caller's transaction ends with these statements, and may be
        committed with them (where the dialect sends them together); nothing may be
        executed after them in it. Django's commit at the end of the block then has nothing
        left to do, and its on-commit hooks run as always, after the commit."""
        return [self.execute(sql, params) for sql, params in statements]

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
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        params = [_array(col, t) for col, (_, t) in zip(cols, columns, strict=True)]
        return f"{name}({names}) AS (SELECT * FROM unnest({arrays}))", params

    def ids(self, values: Iterable[int]) -> tuple[str, list]:
        return "= ANY(%s::bigint[])", [_array(values, "bigint")]

    def texts(self, values: Iterable[str]) -> tuple[str, list]:
        return "= ANY(%s::text[])", [_array(values, "text")]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        connection.ensure_connection()
        raw = connection.connection
        if _begins(raw):
            return self.execute_all([(sql, params)])[0]
        # Django's wrapper turns psycopg's errors into Django's (what retries and the
        # writer look for) and marks the connection as having seen one.
        with connection.wrap_database_errors:
            cursor = _cursor(raw)
            cursor.execute(sql, params, prepare=_prepare())
            return cursor.fetchall() if cursor.description else []

    def execute_all(
        self, statements: Sequence[tuple[str, Sequence[Any]]], *, commit: bool = False
    ) -> list[list[tuple]]:
        """Sent together in one pipeline: one wait for the database instead of one per
        statement (and the transaction's BEGIN goes with the first, its COMMIT with the last
        where ``commit`` says it may). A statement that fails aborts the rest, the COMMIT
        included, and the transaction is rolled back as usual."""
        if not statements:
            return []
        import psycopg

        connection.ensure_connection()
        raw = connection.connection
        commit = commit and not raw.autocommit
        if len(statements) == 1 and not commit and not _begins(raw):
            return [self.execute(*statements[0])]
        with connection.wrap_database_errors:
            cursors = [psycopg.Cursor(raw) for _ in statements]
            with raw.pipeline():
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, params, prepare=_prepare())
                ending = psycopg.Cursor(raw) if commit else None
                if ending is not None:
                    ending.execute("COMMIT", prepare=False)
            out = [c.fetchall() if c.description else [] for c in cursors]
            for cursor in cursors:
                cursor.close()
            if ending is not None:
                ending.close()
            return out


def _begins(raw: Any) -> bool:
    """Is the next statement the first of a transaction? psycopg then sends BEGIN ahead of
    it, a round trip of its own unless both go in one pipeline."""
    from psycopg import pq

    return not raw.autocommit and raw.info.transaction_status == pq.TransactionStatus.IDLE


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

    def texts(self, values: Iterable[str]) -> tuple[str, list]:
        return self.ids(values)  # type: ignore[arg-type]

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


_cursors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cursor(raw: Any) -> Any:
    """One server-binding cursor per psycopg connection, reused statement after statement
    (a cursor per statement costs its setup every time)."""
    cursor = _cursors.get(raw)
    if cursor is None or cursor.closed:
        import psycopg

        cursor = _cursors[raw] = psycopg.Cursor(raw)
    return cursor


def _array(values: Iterable[Any], kind: str) -> str:
    """A PostgreSQL array literal of ``values``, sent as one text parameter and cast by the
    statement: building it with str methods costs a fraction of handing psycopg a list, whose
    array dumper runs in Python element by element."""
    if kind in ("bigint", "float8"):
        return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"
    if kind == "timestamptz":
        return "{" + ",".join("NULL" if v is None else f'"{v.isoformat()}"' for v in values) + "}"
    return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@cache
def _prepare() -> bool:
    """Prepared statements, unless the deployment turned them off (a connection pooler in
    transaction mode that cannot carry them)."""
    return bool(settings.DB_PREPARED_STATEMENTS)


def plan_generically(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On every new PostgreSQL connection, plan prepared statements once, for any values.

    The statements here name the rows they touch by primary key (``id = ANY(%s)``), and a
    generic plan reaches them through it whatever the values. Planned for the values at hand,
    a statement that also says ``server_state = 'in_progress'`` could be steered to the partial
    index of replicas in progress, and then read every replica in progress to find the few
    it names, whenever the statistics lag behind a table that fills fast (a batch of work
    just submitted). Only prepared statements are affected: the ORM prepares none."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")


_DIALECTS = {"postgresql": Postgres(), "sqlite": Sqlite()}


def current() -> Dialect:
    """The dialect of this thread's database connection."""
    try:
        return _DIALECTS[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"no dispatch SQL for {connection.vendor}") from None
