"""The assimilator: hand each canonical output to the app's handler, exactly once.

The handler runs inside the same transaction that marks the work unit assimilated, so
whatever it writes to the database commits with that mark or not at all; a retried task
finds the work unit already done and returns. A handler that raises is recorded on the work
unit (message and attempt count) and retried by the sweep, up to a limit after which the
work unit waits in the "handler failed" state for an operator.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compute import lifecycle, retry
from compute.dispatch import dialect
from compute.dotted import resolve
from compute.models import AssimilatedOutput, WorkUnit
from compute.states import (
    ASSIMILATE_TRANSITIONS,
    FILE_DELETE_TRANSITIONS,
    AssimilateState,
    BatchState,
    ServerState,
)

log = logging.getLogger(__name__)


def store_output(workunit: WorkUnit, output: object) -> None:
    """The default handler: keep the canonical output for the project owner to download."""
    AssimilatedOutput.objects.update_or_create(
        workunit_id=workunit.id,
        defaults={
            "project_id": workunit.project_id,
            "batch_id": workunit.batch_id,
            "name": workunit.name,
            "input": workunit.input,
            "output": output,
        },
    )


BATCH = 200
DEFAULT_HANDLER = "compute.assimilation.store_output"

# The state is written into the statement (the partial index of work units ready to
# assimilate serves it only then; see compute.feeder.UNSENT).
PENDING = (
    "SELECT id FROM compute_workunit "
    f"WHERE assimilate_state = '{AssimilateState.READY.value}' ORDER BY id LIMIT %s"
)

LOCK = """
SELECT id, app_id, project_id, batch_id, name, error_mask, canonical_replica_id
FROM compute_workunit WHERE id {ids} AND assimilate_state = %s ORDER BY id {lock_skip}
"""

HANDLERS = "SELECT id, assimilator_path FROM compute_app WHERE id {ids}"

# The default handler for a batch: the canonical output is copied by the database, never
# passed through Python. Outputs already stored are kept.
STORE_OUTPUTS = """
WITH {rows}
INSERT INTO compute_assimilatedoutput
    (project_id, batch_id, workunit_id, name, input, output, created_at)
SELECT v.v_project, v.v_batch, v.v_wu, v.v_name, w.input, r.output, %s
FROM v JOIN compute_workunit w ON w.id = v.v_wu JOIN compute_replica r ON r.id = v.v_canonical
WHERE w.id {wus} AND r.id {ids}
ON CONFLICT (workunit_id) DO NOTHING
"""

DONE = """
UPDATE compute_workunit SET assimilate_state = %s, assimilated_at = %s, assimilate_error = ''
WHERE id {ids} AND assimilate_state = %s
"""

STILL_OUT = (
    "SELECT DISTINCT workunit_id FROM compute_replica "
    "WHERE workunit_id {ids} AND server_state IN (%s, %s)"
)

FILES_READY = """
UPDATE compute_workunit SET file_delete_state = %s WHERE id {ids} AND file_delete_state = %s
"""

LOCK_BATCHES = "SELECT id FROM compute_batch WHERE id {ids} ORDER BY id {lock}"

COUNT_BATCHES = """
WITH {rows}
UPDATE compute_batch SET n_assimilated = n_assimilated + v.v_assimilated,
                         n_errored = n_errored + v.v_errored
FROM v WHERE id = v.v_batch
"""

COMPLETE_BATCHES = """
UPDATE compute_batch SET state = %s, completed_at = %s
WHERE id {ids} AND state = %s AND n_workunits <= n_assimilated + n_errored
"""


@dataclass(frozen=True, slots=True)
class Ready:
    id: int
    app_id: int
    project_id: int
    batch_id: int | None
    name: str
    error_mask: int
    canonical_replica_id: int | None


def assimilate_pending(limit: int | None = None, now: datetime | None = None) -> int:
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    sql = dialect.current()
    ids = [row[0] for row in sql.execute(PENDING, [limit])]
    done = 0
    for start in range(0, len(ids), BATCH):
        outcomes = assimilate_workunits(ids[start : start + BATCH], now)
        done += sum(1 for outcome in outcomes.values() if outcome == "done")
    return done


def assimilate_workunit(workunit_id: int, now: datetime | None = None) -> str:
    return assimilate_workunits([workunit_id], now).get(workunit_id, "nothing to do")


@retry.on_conflict()
def assimilate_workunits(workunit_ids: list[int], now: datetime | None = None) -> dict[int, str]:
    """Assimilate a batch in one transaction; work units another assimilator holds are
    skipped. The default handler's outputs are written with one statement; other handlers
    run once per work unit, each in a savepoint so one failure does not undo the others."""
    now = now or timezone.now()
    sql = dialect.current()
    with transaction.atomic():
        ids, params = sql.ids(workunit_ids)
        ready = [
            Ready(*row)
            for row in sql.execute(sql.format(LOCK, ids=ids), [*params, AssimilateState.READY])
        ]
        if not ready:
            return {}
        app_ids, params = sql.ids(sorted({wu.app_id for wu in ready}))
        handler_of = dict(sql.execute(sql.format(HANDLERS, ids=app_ids), params))
        outcomes: dict[int, str] = {}
        bulk = [
            wu for wu in ready if not wu.error_mask and handler_of[wu.app_id] == DEFAULT_HANDLER
        ]
        if bulk:
            cte, params = sql.rows(
                "v",
                (("v_wu", "bigint"), ("v_project", "bigint"), ("v_batch", "bigint"),
                 ("v_name", "text"), ("v_canonical", "bigint")),
                [(wu.id, wu.project_id, wu.batch_id, wu.name, wu.canonical_replica_id)
                 for wu in bulk],
            )  # fmt: skip
            wus, wu_params = sql.ids([wu.id for wu in bulk])
            ids, id_params = sql.ids([wu.canonical_replica_id for wu in bulk])
            sql.execute(
                sql.format(STORE_OUTPUTS, rows=cte, wus=wus, ids=ids),
                [*params, now, *wu_params, *id_params],
            )
        for wu in ready:
            if wu.error_mask or handler_of[wu.app_id] == DEFAULT_HANDLER:
                outcomes[wu.id] = "done"
        custom = [wu.id for wu in ready if wu.id not in outcomes]
        if custom:
            outcomes.update(_run_handlers(custom, handler_of))
        _finish(sql, [wu for wu in ready if outcomes[wu.id] == "done"], now)
        return outcomes


def _run_handlers(workunit_ids: list[int], handler_of: dict[int, str]) -> dict[int, str]:
    """Handlers other than the default get the work unit and its canonical output."""
    outcomes = {}
    for wu in WorkUnit.objects.select_related("canonical_replica").filter(id__in=workunit_ids):
        try:
            with transaction.atomic():
                resolve(handler_of[wu.app_id])(wu, wu.canonical_replica.output)
        except Exception as e:
            outcomes[wu.id] = _record_failure(wu, e)
            continue
        outcomes[wu.id] = "done"
    return outcomes


def _finish(sql: dialect.Dialect, workunits: list[Ready], now: datetime) -> None:
    if not workunits:
        return
    done = [wu.id for wu in workunits]
    ids, params = sql.ids(done)
    source, target = ASSIMILATE_TRANSITIONS["done"]
    sql.execute(sql.format(DONE, ids=ids), [target, now, *params, source])
    still_out = {
        row[0]
        for row in sql.execute(
            sql.format(STILL_OUT, ids=ids), [*params, ServerState.UNSENT, ServerState.IN_PROGRESS]
        )
    }
    source, target = FILE_DELETE_TRANSITIONS["ready"]
    files, params = sql.ids([i for i in done if i not in still_out])
    sql.execute(sql.format(FILES_READY, ids=files), [target, *params, source])
    per_batch: dict[int, Counter] = defaultdict(Counter)
    for wu in workunits:
        if wu.batch_id:
            per_batch[wu.batch_id]["errored" if wu.error_mask else "assimilated"] += 1
    if not per_batch:
        return
    # Batches are locked in id order first: two assimilators never wait on each other in a
    # cycle.
    batch_ids, params = sql.ids(sorted(per_batch))
    sql.execute(sql.format(LOCK_BATCHES, ids=batch_ids), params)
    cte, rows = sql.rows(
        "v",
        (("v_batch", "bigint"), ("v_assimilated", "bigint"), ("v_errored", "bigint")),
        [(b, c["assimilated"], c["errored"]) for b, c in sorted(per_batch.items())],
    )
    sql.execute(sql.format(COUNT_BATCHES, rows=cte), rows)
    sql.execute(
        sql.format(COMPLETE_BATCHES, ids=batch_ids),
        [BatchState.COMPLETED, now, *params, BatchState.IN_PROGRESS],
    )


def _record_failure(wu: WorkUnit, error: Exception) -> str:
    log.warning("assimilator for work unit %s failed: %s", wu.id, error)
    attempts = wu.assimilate_attempts + 1
    message = "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]
    WorkUnit.objects.filter(id=wu.id).update(assimilate_attempts=attempts, assimilate_error=message)
    if attempts >= settings.COMPUTE["ASSIMILATE_MAX_ATTEMPTS"]:
        lifecycle.move_assimilate_state(wu.id, "fail")
        return "failed"
    return "will retry"


def retry_failed(workunit_ids: list[int]) -> int:
    """An operator's retry of work units whose handler gave up."""
    return sum(
        lifecycle.move_assimilate_state(i, "retry", assimilate_attempts=0) for i in workunit_ids
    )
