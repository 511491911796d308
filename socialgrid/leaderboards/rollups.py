"""Daily and weekly credit roll-ups, written with the grant that earned the credit.

:func:`record_period_credit` receives ``compute.signals.credit_granted`` inside the granting
transaction, so a roll-up commits exactly when its ledger entries do: the signal is sent
only for grants that took effect (the ledger refuses a replica's second grant), and a
failure here rolls the grant back to be retried, never half-counted.

Each row is an upsert, ``INSERT … ON CONFLICT (…) DO UPDATE SET amount = amount +
excluded.amount``, one statement per table and scope for the whole batch. Both PostgreSQL
and SQLite run it atomically against the unique index: two transactions adding to the same
new row never both insert (the second waits on the first's index entry, then adds to the
committed row), which get_or_create plus an F() update only achieves with a savepoint and
a retry. Rows go in (user, project) order, the order every grant locks in, so concurrent
batches cannot deadlock. The all-projects rows have ``project`` NULL; NULLs are distinct in
a unique index, hence a partial unique index per scope, each named as a conflict target.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from django.db import connection, transaction

from compute.credit import Grant
from socialgrid.leaderboards import app_settings, sorted_sets
from socialgrid.leaderboards.boards import utc_day, week_start
from socialgrid.leaderboards.models import DailyCredit, PeriodCredit, WeeklyCredit

# (user id, project id or None) -> amount
Amounts = dict[tuple[int, int | None], float]


def record_period_credit(sender, grants: Sequence[Grant], now: datetime, **kwargs) -> Amounts:
    """Add ``grants`` to today's and this week's roll-ups (the receiver of credit_granted)."""
    amounts = credit_by_user_and_project(grants)
    day = utc_day(now)
    if amounts:
        add_credit(DailyCredit, "day", day, amounts)
        add_credit(WeeklyCredit, "week", week_start(day), amounts)
    sorted_sets.freshen_after_commit(grants, day)
    return amounts


def credit_by_user_and_project(grants: Sequence[Grant]) -> Amounts:
    """Each volunteer's credit in the batch, per project and over all projects (None)."""
    amounts: Amounts = defaultdict(float)
    for g in grants:
        # Anonymous hosts earn for no volunteer; nothing to roll up until one claims them.
        if g.user_id is None or g.amount <= 0:
            continue
        amounts[(g.user_id, g.project_id)] += g.amount
        amounts[(g.user_id, None)] += g.amount
    return dict(amounts)


def add_credit(model: type[PeriodCredit], column: str, start: date, amounts: Amounts) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(column)
    when = connection.ops.adapt_datefield_value(start)
    scoped = sorted((u, p, a) for (u, p), a in amounts.items() if p is not None)
    overall = sorted((u, a) for (u, p), a in amounts.items() if p is None)
    with connection.cursor() as cursor:
        if overall:
            cursor.execute(
                f"INSERT INTO {table} (user_id, project_id, {col}, amount) VALUES "
                + ", ".join(["(%s, NULL, %s, %s)"] * len(overall))
                + f" ON CONFLICT (user_id, {col}) WHERE project_id IS NULL"
                + f" DO UPDATE SET amount = {table}.amount + excluded.amount",
                [v for u, a in overall for v in (u, when, a)],
            )
        if scoped:
            cursor.execute(
                f"INSERT INTO {table} (user_id, project_id, {col}, amount) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(scoped))
                + f" ON CONFLICT (user_id, project_id, {col}) WHERE project_id IS NOT NULL"
                + f" DO UPDATE SET amount = {table}.amount + excluded.amount",
                [v for u, p, a in scoped for v in (u, p, when, a)],
            )


def prune_period_credit(today: date, project_ids: Sequence[int]) -> int:
    """Delete roll-ups past their retention, scope by scope so each delete is an index
    range (the ranking indexes start with project, then the date)."""
    day_cutoff = today - timedelta(days=app_settings.get("DAILY_RETENTION_DAYS"))
    week_cutoff = week_start(today) - timedelta(weeks=app_settings.get("WEEKLY_RETENTION_WEEKS"))
    deleted = 0
    with transaction.atomic():
        for project_id in [None, *project_ids]:
            deleted += DailyCredit.objects.filter(
                project_id=project_id, day__lt=day_cutoff
            ).delete()[0]
            deleted += WeeklyCredit.objects.filter(
                project_id=project_id, week__lt=week_cutoff
            ).delete()[0]
    return deleted
