"""BOINC's file deleter and db_purge: drop outputs the assimilator has taken, then old rows.

Outputs of assimilated work units are deleted ``OUTPUT_RETENTION_DAYS`` after assimilation
(late replicas can still be checked against the canonical output until then). Work units
and their replicas are purged ``PURGE_AFTER_DAYS`` after assimilation; the credit ledger
and the assimilated outputs are kept, since they do not reference the purged rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import Replica, WorkUnit
from compute.states import FileDeleteState


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
        WorkUnit.objects.filter(id__in=ids).update(canonical_replica=None)
        Replica.objects.filter(workunit_id__in=ids).delete()
        WorkUnit.objects.filter(id__in=ids).delete()
    return len(ids)


def run_cleanup(now: datetime | None = None) -> tuple[int, int]:
    now = now or timezone.now()
    return delete_outputs(now), purge(now)
