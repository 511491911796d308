"""How far the server trusts a host with an app: BOINC's host_app_version bookkeeping.

- ``consecutive_valid`` counts valid results in a row; an error, a timeout or an invalid
  result resets it. Adaptive replication trusts a host with at least ``TRUST_THRESHOLD`` of
  them, with probability 1 - 1/consecutive_valid.
- ``daily_quota`` is BOINC's max_jobs_per_day (per core): halved on each error, timeout or
  invalid result (down to 1), doubled on each valid result (up to the project's default).

Verdicts come in batches (a validation batch, a flush of error reports, a sweep of
timeouts), so each is one statement for the whole batch, whatever the number of hosts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from compute.dispatch import dialect

TRUST_THRESHOLD = 10

# Every statement that writes several hosts' records (these, and the count of jobs in a
# flush's leases) locks them first in the order of their ids: a validation and a flush that
# share hosts then wait for each other instead of deadlocking (one would wait a whole
# ``deadlock_timeout``, a second, before being refused). PostgreSQL never folds a WITH query
# that locks rows into the statement, so the locks are taken before any row is written.
LOCK_RECORDS = """
locked AS (
    SELECT q.id FROM compute_hostapp q
    WHERE (q.host_id, q.app_id) IN (SELECT {host}, {app} FROM {pairs})
    ORDER BY q.id {{lock}}
)"""

RECORD_VALID = f"""
WITH {{rows}}, {LOCK_RECORDS.format(host="v_host", app="v_app", pairs="v")}
UPDATE compute_hostapp AS q
SET consecutive_valid = q.consecutive_valid + v.v_n,
    daily_quota = CASE WHEN q.daily_quota >= v.v_reaches THEN v.v_cap
                       ELSE q.daily_quota * v.v_factor END
FROM locked, v WHERE q.id = locked.id AND q.host_id = v.v_host AND q.app_id = v.v_app
"""

# The quota halves per failure, at least 1; a quota fits in 31 bits, so halving it 31 times
# or more leaves the floor.
RECORD_FAILURES = f"""
WITH {{rows}}, {LOCK_RECORDS.format(host="v_host", app="v_app", pairs="v")}
UPDATE compute_hostapp AS q
SET consecutive_valid = 0, daily_quota = {{greatest}}(q.daily_quota / v.v_divisor, 1)
FROM locked, v WHERE q.id = locked.id AND q.host_id = v.v_host AND q.app_id = v.v_app
"""


def is_trusted(consecutive_valid: int, rng: random.Random | None = None) -> bool:
    if consecutive_valid < TRUST_THRESHOLD:
        return False
    return (rng or random).random() < 1.0 - 1.0 / consecutive_valid


def record_valid(
    pairs: Iterable[tuple[int, int]], quota_cap: dict[int, int], sql: dialect.Dialect | None = None
) -> None:
    """Valid results for (host, app) pairs: one more in a row, quota doubles (per result)
    up to the cap. A batch may hold many results of one host (a backlog validated after an
    outage), so the doubling is never computed past the cap: a quota at or above
    cap / 2**n goes straight to the cap, a smaller one doubles n times and stays under it
    (so the factor used is never more than the cap)."""
    sql = sql or dialect.current()
    statement = record_valid_statement(pairs, quota_cap, sql)
    if statement is not None:
        sql.execute(*statement)


def record_valid_statement(
    pairs: Iterable[tuple[int, int]], quota_cap: dict[int, int], sql: dialect.Dialect
) -> tuple[str, list] | None:
    """:func:`record_valid` as a statement, for a caller to send with others."""
    rows = []
    for (host_id, app_id), n in sorted(Counter(pairs).items()):
        cap = quota_cap[app_id]
        reaches_cap = -(-cap // 2**n)  # ceil(cap / 2**n), at least 1
        rows.append((host_id, app_id, n, cap, reaches_cap, min(2**n, max(cap, 1))))
    if not rows:
        return None
    cte, params = sql.rows(
        "v",
        (("v_host", "bigint"), ("v_app", "bigint"), ("v_n", "bigint"),
         ("v_cap", "bigint"), ("v_reaches", "bigint"), ("v_factor", "bigint")),
        rows,
    )  # fmt: skip
    return sql.format(RECORD_VALID, rows=cte), params


def record_failure(pairs: Iterable[tuple[int, int]], sql: dialect.Dialect | None = None) -> None:
    """Errors, timeouts and invalid results of (host, app) pairs: the streak ends and the
    quota halves (per failure, at least 1)."""
    sql = sql or dialect.current()
    statement = record_failure_statement(pairs, sql)
    if statement is not None:
        sql.execute(*statement)


def record_failure_statement(
    pairs: Iterable[tuple[int, int]], sql: dialect.Dialect
) -> tuple[str, list] | None:
    """:func:`record_failure` as a statement, for a caller to send with others."""
    rows = [(host, app, 2 ** min(n, 31)) for (host, app), n in sorted(Counter(pairs).items())]
    if not rows:
        return None
    cte, params = sql.rows(
        "v", (("v_host", "bigint"), ("v_app", "bigint"), ("v_divisor", "bigint")), rows
    )
    return sql.format(RECORD_FAILURES, rows=cte), params
