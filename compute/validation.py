"""The validator: find a quorum of agreeing results, pick the canonical one, grant credit.

A work unit is validated when need-validate is set (by the result that completed its quorum,
see :mod:`compute.dispatch.reports`). With no canonical result yet, the successful replicas
are grouped by the app's comparator; a group holding a strict majority of the minimum quorum
wins. Its first member becomes canonical, its members valid, the rest invalid, and each
valid replica is granted credit once. Without agreement the candidates are inconclusive and
the work unit asks for one more replica (up to its cap). Replicas that return after the
canonical one are checked against it.

Unreplicated results (adaptive replication) are accepted alone, except for the share chosen
for a spot check: those are re-computed by the app's Python reference, and a mismatch
marks the result invalid and gives the work unit the project's full quorum.

Work units are validated in batches, with a fixed handful of statements per batch: one
read of the locked work units and their apps, one of their results, the verdicts decided in
Python into a :class:`~compute.verdicts.Plan`, and the plan written set-based (replica
states and granted credit, canonical results, the credit ledger and totals, reliability).
Outputs are compared as stored JSON text first; they are parsed only when the texts differ
(the comparator may still find them equal: 1 and 1.0, numbers within a tolerance).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compute import retry
from compute.dispatch import dialect
from compute.states import Outcome
from compute.verdicts import AppPolicy, Plan, ReplicaRow, Verdict, WorkUnitRow, decide

BATCH = 200

PENDING = "SELECT id FROM compute_workunit WHERE need_validate ORDER BY id LIMIT %s"

LOCK = """
SELECT id, app_id, project_id, input{text}, min_quorum, target_nresults, max_total_results,
       replication, spot_check, canonical_replica_id, canonical_credit, error_mask,
       file_delete_state
FROM compute_workunit WHERE id {ids} AND need_validate ORDER BY id {lock_skip}
"""

APPS = """
SELECT a.id, a.comparator, a.tolerance, a.comparator_path, a.reference_path,
       p.credit_policy, p.max_credit_per_replica, p.daily_quota_per_core, p.min_quorum,
       p.target_nresults
FROM compute_app a JOIN compute_project p ON p.id = a.project_id WHERE a.id {ids}
"""

RESULTS = """
SELECT id, workunit_id, host_id, user_id, validate_state, output{text}, cpu_time,
       claimed_credit, sent_at, received_at
FROM compute_replica WHERE workunit_id {ids} AND outcome = %s
ORDER BY workunit_id, received_at, id
"""

DONE = "UPDATE compute_workunit SET need_validate = false WHERE id {ids}"


def validate_pending(limit: int | None = None, now: datetime | None = None) -> list[Verdict]:
    """The validator sweep: work units flagged need-validate, oldest first, in batches."""
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    ids = [row[0] for row in dialect.current().execute(PENDING, [limit])]
    verdicts: list[Verdict] = []
    for start in range(0, len(ids), BATCH):
        verdicts += validate_workunits(ids[start : start + BATCH], now=now)
    return verdicts


def validate_workunit(workunit_id: int, now: datetime | None = None) -> Verdict:
    verdicts = validate_workunits([workunit_id], now=now)
    return verdicts[0] if verdicts else Verdict(workunit_id, "nothing to do")


@retry.on_conflict()
def validate_workunits(workunit_ids: list[int], now: datetime | None = None) -> list[Verdict]:
    """Validate a batch of work units in one transaction. Work units another validator holds
    are skipped (it is validating them), as are those no longer flagged."""
    now = now or timezone.now()
    sql = dialect.current()
    owned = not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        ids, params = sql.ids(workunit_ids)
        rows = sql.execute(sql.format(LOCK, ids=ids), params)
        if not rows:
            return []
        apps = _apps(sql, {row[1] for row in rows})
        workunits = [WorkUnitRow(*row, app=apps[row[1]]) for row in rows]
        locked = [wu.id for wu in workunits]
        ids, params = sql.ids(locked)
        by_wu: dict[int, list[ReplicaRow]] = defaultdict(list)
        for row in sql.execute(sql.format(RESULTS, ids=ids), [*params, Outcome.SUCCESS]):
            replica = ReplicaRow(*row[:8], sql.read_dt(row[8]), sql.read_dt(row[9]))
            by_wu[replica.workunit_id].append(replica)
        plan = Plan(now)
        verdicts = [decide(wu, by_wu[wu.id], plan) for wu in workunits]
        closing = plan.apply(sql)
        # The hosts' reliability records last, with the COMMIT where this transaction is
        # the caller's own: leases count jobs on those records, and wait for their locks
        # only while these statements and the commit run.
        sql.execute_all([(sql.format(DONE, ids=ids), params), *closing], commit=owned)
        return verdicts


def _apps(sql: dialect.Dialect, app_ids: set[int]) -> dict[int, AppPolicy]:
    ids, params = sql.ids(sorted(app_ids))
    return {row[0]: AppPolicy(*row) for row in sql.execute(sql.format(APPS, ids=ids), params)}
