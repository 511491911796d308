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


def assimilate_pending(limit: int | None = None, now: datetime | None = None) -> int:
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    ids = list(
        WorkUnit.objects.filter(assimilate_state=AssimilateState.READY)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(1 for i in ids if assimilate_workunit(i, now) == "done")


@retry.on_conflict()
def assimilate_workunit(workunit_id: int, now: datetime | None = None) -> str:
    now = now or timezone.now()
    with transaction.atomic():
        wu = (
            WorkUnit.objects.select_for_update(of=("self",), no_key=True)
            .select_related("app", "canonical_replica")
            .filter(id=workunit_id, assimilate_state=AssimilateState.READY)
            .first()
        )
        if wu is None:
            return "nothing to do"
        if not wu.error_mask:
            try:
                with transaction.atomic():
                    resolve(wu.app.assimilator_path)(wu, wu.canonical_replica.output)
            except Exception as e:
                return _record_failure(wu, e)
        lifecycle.move_assimilate_state(wu.id, "done", assimilated_at=now, assimilate_error="")
        if not wu.replicas.filter(
            server_state__in=[ServerState.UNSENT, ServerState.IN_PROGRESS]
        ).exists():
            lifecycle.move_file_delete_state(WorkUnit.objects.filter(id=wu.id), "ready")
        if wu.batch_id:
            _count_in_batch(wu, now)
        return "done"


def _record_failure(wu: WorkUnit, error: Exception) -> str:
    log.warning("assimilator for work unit %s failed: %s", wu.id, error)
    attempts = wu.assimilate_attempts + 1
    message = "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]
    WorkUnit.objects.filter(id=wu.id).update(assimilate_attempts=attempts, assimilate_error=message)
    if attempts >= settings.COMPUTE["ASSIMILATE_MAX_ATTEMPTS"]:
        lifecycle.move_assimilate_state(wu.id, "fail")
        return "failed"
    return "will retry"


def _count_in_batch(wu: WorkUnit, now: datetime) -> None:
    field = "n_errored" if wu.error_mask else "n_assimilated"
    Batch.objects.filter(id=wu.batch_id).update(**{field: F(field) + 1})
    Batch.objects.filter(
        id=wu.batch_id,
        state=BatchState.IN_PROGRESS,
        n_workunits__lte=F("n_assimilated") + F("n_errored"),
    ).update(state=BatchState.COMPLETED, completed_at=now)


def retry_failed(workunit_ids: list[int]) -> int:
    """An operator's retry of work units whose handler gave up."""
    return sum(
        lifecycle.move_assimilate_state(i, "retry", assimilate_attempts=0) for i in workunit_ids
    )
