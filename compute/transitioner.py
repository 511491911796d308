"""The transitioner: deadlines, new replicas, and work units that cannot succeed.

BOINC's transitioner looks at a work unit whenever something happened to it. Here a work
unit is flagged by setting ``transition_time`` (on an error, a timeout, an inconclusive
validation, adaptive escalation, a cancellation) and ``transition_workunit`` then:

- creates replicas until the active ones (unsent, in progress, or returned and not
  invalid) reach ``target_nresults``;
- fails the work unit, setting BOINC's error mask bits, when there were too many errors,
  too many replicas in all, or too many successes without a quorum;
- for a failed work unit: unsent replicas become "didn't need", in-progress ones are
  aborted and their hosts told to stop, and the work unit goes to the assimilator so its
  batch counts it;
- marks the outputs of an assimilated work unit ready for deletion once no replica is
  still out.

Deadlines are found by an indexed scan over in-progress replicas (``time_out_replicas``).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compute import lifecycle, notify, reliability, retry
from compute.models import Replica, WorkUnit
from compute.states import (
    AssimilateState,
    ErrorMask,
    FileDeleteState,
    Outcome,
    ServerState,
    ValidateState,
)


@retry.on_conflict()
def time_out_replicas(now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Replicas past their deadline get outcome no-reply; returns the work units flagged."""
    now = now or timezone.now()
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    expired = list(
        Replica.objects.filter(server_state=ServerState.IN_PROGRESS, deadline__lt=now)
        .order_by("deadline")
        .values_list("id", flat=True)[:limit]
    )
    if not expired:
        return []
    with transaction.atomic():
        lifecycle.time_out(expired, now)
        timed_out = list(
            Replica.objects.filter(id__in=expired, outcome=Outcome.NO_REPLY).values_list(
                "workunit_id", "host_id", "app_id"
            )
        )
        reliability.record_failure({(h, a) for _, h, a in timed_out if h is not None})
        workunit_ids = sorted({w for w, _, _ in timed_out})
        lifecycle.flag_transition(workunit_ids, now)
    return workunit_ids


def transition_due(now: datetime | None = None, limit: int | None = None) -> int:
    now = now or timezone.now()
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    ids = list(
        WorkUnit.objects.filter(transition_time__lte=now)
        .order_by("transition_time")
        .values_list("id", flat=True)[:limit]
    )
    for workunit_id in ids:
        transition_workunit(workunit_id, now)
    return len(ids)


def run_transitioner(now: datetime | None = None) -> int:
    now = now or timezone.now()
    time_out_replicas(now)
    return transition_due(now)


@retry.on_conflict()
def transition_workunit(workunit_id: int, now: datetime | None = None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        wu = WorkUnit.objects.select_for_update(no_key=True).filter(id=workunit_id).first()
        if wu is None:
            return
        replicas = list(wu.replicas.all())
        if not wu.error_mask and wu.canonical_replica_id is None:
            wu.error_mask |= _failures(wu, replicas)
            if not wu.error_mask:
                _top_up(wu, replicas)
        if wu.error_mask:
            _wind_down(wu, replicas)
        _ready_for_cleanup(wu)
        wu.transition_time = None
        wu.save(update_fields=["error_mask", "transition_time"])


def _active(replicas: list[Replica]) -> int:
    return sum(
        1
        for r in replicas
        if r.server_state in (ServerState.UNSENT, ServerState.IN_PROGRESS)
        or (r.outcome == Outcome.SUCCESS and r.validate_state != ValidateState.INVALID)
    )


def _failures(wu: WorkUnit, replicas: list[Replica]) -> int:
    errors = sum(1 for r in replicas if r.outcome in (Outcome.CLIENT_ERROR, Outcome.VALIDATE_ERROR))
    successes = sum(1 for r in replicas if r.outcome == Outcome.SUCCESS)
    mask = 0
    if errors > wu.max_error_results:
        mask |= ErrorMask.TOO_MANY_ERRORS
    if successes > wu.max_success_results:
        mask |= ErrorMask.TOO_MANY_SUCCESS
    needed = wu.target_nresults - _active(replicas)
    if needed > 0 and len(replicas) + needed > wu.max_total_results:
        mask |= ErrorMask.TOO_MANY_TOTAL
    return mask


def _top_up(wu: WorkUnit, replicas: list[Replica]) -> None:
    needed = wu.target_nresults - _active(replicas)
    if needed > 0:
        first = max((r.ordinal for r in replicas), default=-1) + 1
        Replica.objects.bulk_create(lifecycle.new_replicas(wu, needed, first))


def _wind_down(wu: WorkUnit, replicas: list[Replica]) -> None:
    lifecycle.not_needed([wu.id])
    aborted = lifecycle.abort_in_progress([wu.id])
    if aborted:
        transaction.on_commit(lambda: notify.replicas_cancelled(aborted))
    if wu.need_validate:
        WorkUnit.objects.filter(id=wu.id).update(need_validate=False)
        lifecycle.set_validate_state(
            [
                r.id
                for r in replicas
                if r.outcome == Outcome.SUCCESS and r.validate_state == ValidateState.INIT
            ],
            "no_check",
        )
    if lifecycle.move_assimilate_state(wu.id, "ready"):
        from compute.drains import request_assimilation

        transaction.on_commit(request_assimilation)


def _ready_for_cleanup(wu: WorkUnit) -> None:
    """Outputs may go once the work unit is assimilated and no replica is still out."""
    if (
        wu.file_delete_state == FileDeleteState.INIT
        and WorkUnit.objects.filter(id=wu.id, assimilate_state=AssimilateState.DONE).exists()
        and not wu.replicas.filter(
            server_state__in=[ServerState.UNSENT, ServerState.IN_PROGRESS]
        ).exists()
    ):
        lifecycle.move_file_delete_state(WorkUnit.objects.filter(id=wu.id), "ready")


def bump_limits(workunit_ids: list[int]) -> None:
    """Room for another round of replicas (an operator's retry): each limit grows by the
    project's own allowance."""
    for wu in WorkUnit.objects.filter(id__in=workunit_ids).select_related("project"):
        p = wu.project
        WorkUnit.objects.filter(id=wu.id).update(
            max_error_results=F("max_error_results") + p.max_error_results,
            max_total_results=F("max_total_results") + p.max_total_results,
            max_success_results=F("max_success_results") + p.max_success_results,
        )
