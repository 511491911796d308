"""What hosts report: results, errors and progress, a few set-based statements per flush.

Each report is accepted only by a conditional UPDATE that names the host, the lease token,
the state the replica must be in (the transition in :mod:`compute.states`) and the
deadline, so a replay, a late upload or a forged replica id changes nothing; refused ones
then pay one read, for the whole flush, to name their reason.

Results are counted on their work units in the same statement that decides whether to ask
for validation, so two results of one work unit committed at the same moment by two
processes cannot each count only themselves and neither reach the quorum.

Each statement that joins a row set to a table joins it on the table's primary key and
names the rows no other way: the plan starts from the row set and reaches each row with one
probe of the key, whatever the set's size or what the statistics believe of the table.
(Naming the keys a second time, ``r.id = ANY(…)``, let a generic plan start from the table
and compare each row it found with the whole set: quadratic, 30 ms for 200 replicas.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from compute import credit, reliability
from compute.catalog import catalog
from compute.dispatch.dialect import Dialect
from compute.dispatch.ops import Receipt, Refusal, ReportError, ReportProgress, ReportResult
from compute.states import REPLICA_TRANSITIONS, ServerState


def _transition(name: str) -> tuple[list[str], list[str]]:
    source, target = REPLICA_TRANSITIONS[name]
    return list(source), list(target)


def _lease_problem(row: tuple | None, host_id: int, token: str, now: datetime) -> Refusal | None:
    """What is wrong with a lease, from (host, token, server state, deadline); None if
    nothing is."""
    if row is None:
        return Refusal.UNKNOWN_REPLICA
    holder, lease_token, server_state, deadline = row
    if holder != host_id:
        return Refusal.NOT_YOURS
    if lease_token != token:
        return Refusal.BAD_LEASE
    if server_state != ServerState.IN_PROGRESS:
        return Refusal.NOT_IN_PROGRESS
    if deadline is None or deadline < now:
        return Refusal.LEASE_EXPIRED
    return None


def _leases(sql: Dialect, replica_ids: Sequence[int]) -> dict[int, tuple]:
    ids, params = sql.ids(replica_ids)
    rows = sql.execute(
        "SELECT id, host_id, lease_token, server_state, deadline FROM compute_replica "
        f"WHERE id {ids}",
        params,
    )
    return {r[0]: (r[1], r[2], r[3], sql.read_dt(r[4])) for r in rows}


def _first_of_each(ops: Sequence[ReportResult | ReportError | ReportProgress]) -> list[int]:
    """Indexes of the first op per (replica, host, lease): a report sent twice in one flush
    counts once. Reports of one replica from different hosts or leases all go to the
    statement, where only the one matching the lease can take effect."""
    seen: set[tuple[int, int, str]] = set()
    first = []
    for i, op in enumerate(ops):
        key = (op.replica_id, op.host.id, op.token)
        if key not in seen:
            seen.add(key)
            first.append(i)
    return first


def _receipts(
    sql: Dialect,
    ops: Sequence[ReportResult | ReportError | ReportProgress],
    accepted: dict[int, Receipt],
    first: list[int],
    now: datetime,
) -> list[Receipt]:
    firsts = set(first)
    refused = {op.replica_id for i, op in enumerate(ops) if i in firsts and i not in accepted}
    leases = _leases(sql, refused) if refused else {}
    out = []
    for i, op in enumerate(ops):
        if i in accepted:
            out.append(accepted[i])
        elif i in firsts:
            # Refused by the update, so something was wrong then even if nothing is now.
            problem = _lease_problem(leases.get(op.replica_id), op.host.id, op.token, now)
            out.append(Receipt.refused(problem or Refusal.NOT_IN_PROGRESS))
        else:
            out.append(Receipt.refused(Refusal.NOT_IN_PROGRESS))
    return out


# --- results --------------------------------------------------------------------------------

RECORD_RESULTS = """
WITH {rows}
UPDATE compute_replica AS r
SET server_state = %s, outcome = %s, validate_state = %s, output = v.v_output{json},
    cpu_time = v.v_cpu, claimed_credit = v.v_claimed, received_at = %s
FROM v
WHERE r.id = v.v_id AND r.host_id = v.v_host AND r.lease_token = v.v_token
  AND r.deadline >= %s AND r.server_state = %s AND r.outcome = %s AND r.validate_state = %s
RETURNING id, host_id, lease_token, workunit_id
"""

RESULT_COLUMNS = (
    ("v_id", "bigint"),
    ("v_host", "bigint"),
    ("v_token", "text"),
    ("v_output", "text"),
    ("v_cpu", "float8"),
    ("v_claimed", "float8"),
)

# Count the new results on their work units and ask for validation once a work unit has
# enough results to try for a quorum, or a canonical result to check them against. The
# count is read and written in the same row update: two results of one work unit committed
# at the same moment by two processes update the row one after the other, and the second
# sees the first's count (a count of the results table would see only its own transaction's).
COUNT_RESULTS = """
WITH {rows}
UPDATE compute_workunit
SET n_success = n_success + v.v_n,
    need_validate = need_validate OR (error_mask = 0 AND (
        canonical_replica_id IS NOT NULL OR n_success + v.v_n >= min_quorum))
FROM v
WHERE id = v.v_wu
RETURNING id, need_validate
"""


@dataclass
class Recorded:
    """Results written, their work units not yet counted (see :func:`count_results`)."""

    ops: Sequence[ReportResult]
    first: list[int]
    done: dict[tuple[int, int, str], int]  # (replica, host, lease) -> work unit


def results_statement(
    sql: Dialect, ops: Sequence[ReportResult], now: datetime
) -> tuple[tuple[str, list], Recorded]:
    """The statement recording ``ops``, and what its rows are read back into
    (:func:`recorded`): a flush sends it with the first statement of its leases."""
    first = _first_of_each(ops)
    rows = [
        (
            ops[i].replica_id,
            ops[i].host.id,
            ops[i].token,
            ops[i].output,
            ops[i].cpu_time,
            credit.claimed_credit(ops[i].host.benchmark_fpops, ops[i].cpu_time),
        )
        for i in first
    ]
    cte, params = sql.rows("v", RESULT_COLUMNS, rows)
    source, target = _transition("report_success")
    statement = (sql.format(RECORD_RESULTS, rows=cte), [*params, *target, now, now, *source])
    return statement, Recorded(ops, first, {})


def recorded(partial: Recorded, rows: list[tuple]) -> Recorded:
    partial.done = {
        (replica_id, host_id, token): wu_id for replica_id, host_id, token, wu_id in rows
    }
    return partial


def record_results(sql: Dialect, ops: Sequence[ReportResult], now: datetime) -> Recorded:
    statement, partial = results_statement(sql, ops, now)
    return recorded(partial, sql.execute(*statement))


def count_statement(sql: Dialect, recorded: Recorded) -> tuple[str, list] | None:
    """The statement counting the results on their work units, asking for validation where
    they reach a quorum. A flush sends it last: the work units' rows stay locked until it
    commits, and results of the same work units in another process's flush wait."""
    if not recorded.done:
        return None
    # In work unit order: concurrent flushes lock the rows they share in the same order.
    per_wu = sorted(Counter(recorded.done.values()).items())
    cte, params = sql.rows("v", (("v_wu", "bigint"), ("v_n", "bigint")), per_wu)
    return sql.format(COUNT_RESULTS, rows=cte), params


def settled(recorded: Recorded) -> bool:
    """Do the receipts read back without a statement? Not where a result was refused: its
    lease is looked up to say why."""
    return all(_key(recorded.ops[i]) in recorded.done for i in recorded.first)


def counted(
    sql: Dialect, recorded: Recorded, count_rows: list[tuple], now: datetime
) -> list[Receipt]:
    """The results' receipts, from what the count statement returned."""
    ops, first, done = recorded.ops, recorded.first, recorded.done
    flagged = {wu_id for wu_id, need_validate in count_rows if need_validate}
    if flagged:
        from compute.drains import request_validation

        # Robust: the results are committed; if the request cannot be queued (Redis is
        # restarting), the flag stays set and the validator's sweep finds the work units.
        transaction.on_commit(request_validation, robust=True)
    accepted = {}
    for i in first:
        wu_id = done.get(_key(ops[i]))
        if wu_id is not None:
            accepted[i] = Receipt(True, workunit_id=wu_id, validation_queued=wu_id in flagged)
    return _receipts(sql, ops, accepted, first, now)


def _key(op: ReportResult | ReportError) -> tuple[int, int, str]:
    return (op.replica_id, op.host.id, op.token)


# --- errors ---------------------------------------------------------------------------------

RECORD_ERRORS = """
WITH {rows}
UPDATE compute_replica AS r
SET server_state = %s, outcome = %s, validate_state = %s, error_reason = v.v_reason,
    received_at = %s
FROM v
WHERE r.id = v.v_id AND r.host_id = v.v_host AND r.lease_token = v.v_token
  AND r.deadline >= %s AND r.server_state = %s AND r.outcome = %s AND r.validate_state = %s
RETURNING id, host_id, lease_token, workunit_id, app_id
"""

COUNT_HOST_ERRORS = """
WITH {rows}
UPDATE compute_host SET n_error = n_error + v.v_n FROM v WHERE id = v.v_host
"""

FLAG_TRANSITION = (
    "UPDATE compute_workunit SET transition_time = %s "
    "WHERE id {ids} AND (transition_time IS NULL OR transition_time > %s)"
)


def record_errors(sql: Dialect, ops: Sequence[ReportError], now: datetime) -> list[Receipt]:
    """A client error (the kernel failed, the volunteer aborted): the replica is over, the
    host's quota shrinks and the transitioner decides whether to send another copy."""
    first = _first_of_each(ops)
    rows = [
        (ops[i].replica_id, ops[i].host.id, ops[i].token, str(ops[i].reason)[:500]) for i in first
    ]
    cte, params = sql.rows(
        "v", (("v_id", "bigint"), ("v_host", "bigint"), ("v_token", "text"), ("v_reason", "text")),
        rows,
    )  # fmt: skip
    source, target = _transition("report_error")
    done = {
        (replica_id, host_id, token): (wu_id, app_id, host_id)
        for replica_id, host_id, token, wu_id, app_id in sql.execute(
            sql.format(RECORD_ERRORS, rows=cte),
            [*params, *target, now, now, *source],
        )
    }
    if done:
        reliability.record_failure([(host, app) for _, app, host in done.values()], sql)
        per_host = Counter(host for _, _, host in done.values())
        cte, params = sql.rows(
            "v", (("v_host", "bigint"), ("v_n", "bigint")), sorted(per_host.items())
        )
        sql.execute(sql.format(COUNT_HOST_ERRORS, rows=cte), params)
        workunit_ids = sorted({wu for wu, _, _ in done.values()})
        flag_transition(sql, workunit_ids, now)
        from compute.tasks import transition_workunits

        transaction.on_commit(lambda: transition_workunits.delay(workunit_ids), robust=True)
    accepted = {
        i: Receipt(True, workunit_id=done[_key(ops[i])][0]) for i in first if _key(ops[i]) in done
    }
    return _receipts(sql, ops, accepted, first, now)


def flag_transition(sql: Dialect, workunit_ids: Sequence[int], now: datetime) -> None:
    """Ask the transitioner to look at these work units (no later than ``now``)."""
    ids, params = sql.ids(workunit_ids)
    sql.execute(sql.format(FLAG_TRANSITION, ids=ids), [now, *params, now])


# --- progress -------------------------------------------------------------------------------

PROGRESS_LEASES = """
SELECT r.id, r.host_id, r.lease_token, r.server_state, r.deadline, r.sent_at, r.app_id,
       r.workunit_id, w.delay_bound
FROM compute_replica r JOIN compute_workunit w ON w.id = r.workunit_id
WHERE r.id {ids}
"""

EXTEND_DEADLINES = """
WITH {rows}
UPDATE compute_replica AS r SET deadline = v.v_deadline
FROM v
WHERE r.id = v.v_id AND r.host_id = v.v_host AND r.lease_token = v.v_token
  AND r.deadline >= %s AND r.server_state = %s AND r.deadline < v.v_deadline
"""


def record_progress(sql: Dialect, ops: Sequence[ReportProgress], now: datetime) -> list[Receipt]:
    """A progress report keeps a lease alive: the deadline may move to ``now`` plus the time
    the remaining work should take at the observed pace, within the project's limit past
    the original deadline."""
    ids, params = sql.ids({op.replica_id for op in ops})
    rows = {r[0]: r[1:] for r in sql.execute(sql.format(PROGRESS_LEASES, ids=ids), params)}
    out: list[Receipt] = []
    moves = []
    for op in ops:
        row = rows.get(op.replica_id)
        lease = None if row is None else (row[0], row[1], row[2], sql.read_dt(row[3]))
        problem = _lease_problem(lease, op.host.id, op.token, now)
        if problem:
            out.append(Receipt.refused(problem))
            continue
        deadline, sent_at = lease[3], sql.read_dt(row[4])
        app = catalog.get(row[5])
        limit = sent_at + timedelta(seconds=row[7] + (app.max_deadline_extension if app else 0))
        new_deadline = extended_deadline(deadline, sent_at, limit, op.fraction, now)
        if new_deadline > deadline:
            moves.append((op.replica_id, op.host.id, op.token, new_deadline))
        out.append(Receipt(True, workunit_id=row[6], deadline=new_deadline))
    if moves:
        cte, params = sql.rows(
            "v",
            (("v_id", "bigint"), ("v_host", "bigint"), ("v_token", "text"),
             ("v_deadline", "timestamptz")),
            moves,
        )  # fmt: skip
        sql.execute(sql.format(EXTEND_DEADLINES, rows=cte), [*params, now, ServerState.IN_PROGRESS])
    return out


def extended_deadline(
    deadline: datetime, sent_at: datetime, limit: datetime, fraction_done: float, now: datetime
) -> datetime:
    fraction_done = min(max(float(fraction_done), 0.0), 1.0)
    elapsed = (now - sent_at).total_seconds()
    if fraction_done > 0:
        remaining = elapsed * (1.0 - fraction_done) / fraction_done
        # Capped at the limit before it becomes a timedelta: a tiny fraction would overflow.
        seconds = min(remaining * 1.5 + 60, max(0.0, (limit - now).total_seconds()))
        wanted = now + timedelta(seconds=seconds)
    else:
        wanted = deadline
    return min(max(wanted, deadline), limit)


# --- touches --------------------------------------------------------------------------------


def touch_hosts(sql: Dialect, host_ids: Sequence[int], now: datetime) -> None:
    ids, params = sql.ids(sorted(set(host_ids)))
    sql.execute(f"UPDATE compute_host SET last_seen = %s WHERE id {ids}", [now, *params])
