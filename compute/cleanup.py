"""BOINC's file deleter and db_purge: drop outputs the assimilator has taken, then old rows.

Outputs of assimilated work units are deleted ``OUTPUT_RETENTION_DAYS`` after assimilation
(late replicas can still be checked against the canonical output until then). Work units
and their replicas are purged ``PURGE_AFTER_DAYS`` after assimilation; the credit ledger
and the assimilated outputs are kept, since they do not reference the purged rows.

``purge_batches`` removes whole finished batches at once, outputs included, for work whose
results nobody keeps (the demo's endless series); the credit ledger stays there too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import AssimilatedOutput, Batch, Replica, WorkUnit
from compute.states import AssimilateState, BatchState, FileDeleteState, ServerState


def delete_outputs(now: datetime | None = None, limit: int | None = None) -> int:
    now = now or timezone.now()
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    cutoff = now - timedelta(days=settings.COMPUTE["OUTPUT_RETENTION_DAYS"])
    ids = list(
        WorkUnit.objects.filter(file_delete_state=FileDeleteState.READY, assimilated_at__lt=cutoff)
        .order_by("assimilated_at")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return 0
    with transaction.atomic():
        Replica.objects.filter(workunit_id__in=ids).update(output=None)
        return lifecycle.move_file_delete_state(WorkUnit.objects.filter(id__in=ids), "done")


def purge(now: datetime | None = None, limit: int | None = None) -> int:
    now = now or timezone.now()
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    cutoff = now - timedelta(days=settings.COMPUTE["PURGE_AFTER_DAYS"])
    ids = list(
        WorkUnit.objects.filter(file_delete_state=FileDeleteState.DONE, assimilated_at__lt=cutoff)
        .order_by("assimilated_at")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return 0
    with transaction.atomic():
        _delete_workunits(ids)
    return len(ids)


def purge_batches(batch_ids: list[int]) -> int:
    """Delete the batches ``batch_ids`` that are over, with their work units, replicas and
    assimilated outputs; returns how many. A batch in progress, or with a work unit not yet
    assimilated or a replica still out, is left alone. (Asked directly rather than through
    ``file_delete_state``, which a successful result arriving after assimilation leaves at
    ``init``.) Credit granted for them stays: the ledger keeps plain ids, the totals are
    separate rows.
    """
    with transaction.atomic():
        ids = list(
            Batch.objects.select_for_update()
            .filter(id__in=batch_ids)
            .exclude(state=BatchState.IN_PROGRESS)
            .exclude(workunits__assimilate_state__in=_NOT_ASSIMILATED)
            .exclude(workunits__replicas__server_state__in=_OUT)
            .values_list("id", flat=True)
        )
        if not ids:
            return 0
        workunits = WorkUnit.objects.filter(batch_id__in=ids)
        _delete_workunits(list(workunits.values_list("id", flat=True)))
        AssimilatedOutput.objects.filter(batch_id__in=ids).delete()
        Batch.objects.filter(id__in=ids).delete()
    return len(ids)


_NOT_ASSIMILATED = [AssimilateState.INIT, AssimilateState.READY, AssimilateState.ERROR]
_OUT = [ServerState.UNSENT, ServerState.IN_PROGRESS]


def _delete_workunits(ids: list[int]) -> None:
    WorkUnit.objects.filter(id__in=ids).update(canonical_replica=None)
    Replica.objects.filter(workunit_id__in=ids).delete()
    WorkUnit.objects.filter(id__in=ids).delete()


def run_cleanup(now: datetime | None = None) -> tuple[int, int]:
    now = now or timezone.now()
    return delete_outputs(now), purge(now)
