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
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compute import lifecycle, retry
from compute.dotted import resolve
from compute.models import AssimilatedOutput, Batch, WorkUnit
from compute.states import AssimilateState, BatchState, ServerState

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


def assimilate_pending(limit: int | None = None, now: datetime | None = None) -> int:
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    ids = list(
        WorkUnit.objects.filter(assimilate_state=AssimilateState.READY)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
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
    with transaction.atomic():
        workunits = list(
            WorkUnit.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
            .select_related("app", "canonical_replica")
            .filter(id__in=workunit_ids, assimilate_state=AssimilateState.READY)
            .order_by("id")
        )
        outcomes: dict[int, str] = {}
        bulk = [
            wu
            for wu in workunits
            if not wu.error_mask and wu.app.assimilator_path == DEFAULT_HANDLER
        ]
        store_outputs(bulk)
        for wu in bulk:
            outcomes[wu.id] = "done"
        for wu in workunits:
            if wu.id in outcomes:
                continue
            if wu.error_mask:
                outcomes[wu.id] = "done"
                continue
            try:
                with transaction.atomic():
                    resolve(wu.app.assimilator_path)(wu, wu.canonical_replica.output)
            except Exception as e:
                outcomes[wu.id] = _record_failure(wu, e)
                continue
            outcomes[wu.id] = "done"
        finished = [wu for wu in workunits if outcomes[wu.id] == "done"]
        _finish(finished, now)
        return outcomes


def store_outputs(workunits: list[WorkUnit]) -> None:
    """The default handler for a batch: one insert (outputs already stored are kept)."""
    AssimilatedOutput.objects.bulk_create(
        [
            AssimilatedOutput(
                workunit_id=wu.id,
                project_id=wu.project_id,
                batch_id=wu.batch_id,
                name=wu.name,
                input=wu.input,
                output=wu.canonical_replica.output,
            )
            for wu in workunits
        ],
        ignore_conflicts=True,
    )


def _finish(workunits: list[WorkUnit], now: datetime) -> None:
    if not workunits:
        return
    ids = [wu.id for wu in workunits]
    lifecycle.move_assimilate_states(ids, "done", assimilated_at=now, assimilate_error="")
    still_out = set(
        WorkUnit.objects.filter(
            id__in=ids, replicas__server_state__in=[ServerState.UNSENT, ServerState.IN_PROGRESS]
        ).values_list("id", flat=True)
    )
    lifecycle.move_file_delete_state(
        WorkUnit.objects.filter(id__in=[i for i in ids if i not in still_out]), "ready"
    )
    per_batch: dict[int, Counter] = defaultdict(Counter)
    for wu in workunits:
        if wu.batch_id:
            per_batch[wu.batch_id]["n_errored" if wu.error_mask else "n_assimilated"] += 1
    for batch_id, counts in sorted(per_batch.items()):
        Batch.objects.filter(id=batch_id).update(**{k: F(k) + n for k, n in counts.items()})
        Batch.objects.filter(
            id=batch_id,
            state=BatchState.IN_PROGRESS,
            n_workunits__lte=F("n_assimilated") + F("n_errored"),
        ).update(state=BatchState.COMPLETED, completed_at=now)


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
