"""Moves of replicas and work units between states, through the ORM.

Every move is one conditional UPDATE guarded by the state it leaves (see
:mod:`compute.states`), so a duplicate, late or concurrent caller changes nothing and
learns so from the row count. Callers decide *when* to move; this module guarantees the
move is legal and atomic. The moves on the dispatch path (leases, results, errors) and in
the validator's and assimilator's batches are the same transitions, written out as SQL
from the same table (:mod:`compute.dispatch`, :mod:`compute.verdicts`,
:mod:`compute.assimilation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q, QuerySet

from compute.models import Replica, WorkUnit
from compute.states import (
    ASSIMILATE_TRANSITIONS,
    FILE_DELETE_TRANSITIONS,
    REPLICA_TRANSITIONS,
    AssimilateState,
    FileDeleteState,
    ServerState,
)


def move_replicas(queryset: QuerySet[Replica], transition: str, **fields: object) -> int:
    """Apply a named transition to the replicas in ``queryset`` that are in its source state."""
    (s0, o0, v0), (s1, o1, v1) = REPLICA_TRANSITIONS[transition]
    return queryset.filter(server_state=s0, outcome=o0, validate_state=v0).update(
        server_state=s1, outcome=o1, validate_state=v1, **fields
    )


def new_replicas(workunit: WorkUnit, count: int, first_ordinal: int) -> list[Replica]:
    """Unsaved replicas for a work unit; the caller bulk-creates them."""
    return [
        Replica(
            workunit=workunit,
            project_id=workunit.project_id,
            app_id=workunit.app_id,
            ordinal=first_ordinal + i,
        )
        for i in range(count)
    ]


def time_out(replica_ids: Iterable[int], now: datetime) -> int:
    return move_replicas(
        Replica.objects.filter(id__in=list(replica_ids), deadline__lt=now), "time_out"
    )


def not_needed(workunit_ids: Iterable[int]) -> int:
    """Unsent replicas of finished work units will never be sent."""
    return move_replicas(Replica.objects.filter(workunit_id__in=list(workunit_ids)), "not_needed")


def abort_in_progress(workunit_ids: Iterable[int]) -> list[tuple[int, int]]:
    """In-progress replicas of cancelled or failed work units; returns (replica, host) pairs
    so the hosts can be told to stop."""
    return abort_in_progress_for(Replica.objects.filter(workunit_id__in=list(workunit_ids)))


def abort_in_progress_for(queryset: QuerySet[Replica]) -> list[tuple[int, int]]:
    """Abort the in-progress replicas of ``queryset`` (a volunteer left the project); returns
    (replica, host) pairs so the hosts can be told to stop."""
    pairs = list(queryset.filter(server_state=ServerState.IN_PROGRESS).values_list("id", "host_id"))
    if pairs:
        move_replicas(Replica.objects.filter(id__in=[p[0] for p in pairs]), "abort")
    return pairs


def set_validate_state(replica_ids: Iterable[int], transition: str, **fields: object) -> int:
    ids = list(replica_ids)
    if not ids:
        return 0
    return move_replicas(Replica.objects.filter(id__in=ids), transition, **fields)


# --- Work units -----------------------------------------------------------------------------


def flag_transition(workunit_ids: Iterable[int], now: datetime) -> int:
    """Ask the transitioner to look at these work units (no later than ``now``)."""
    ids = list(workunit_ids)
    if not ids:
        return 0
    return (
        WorkUnit.objects.filter(id__in=ids)
        .filter(Q(transition_time__isnull=True) | Q(transition_time__gt=now))
        .update(transition_time=now)
    )


def reopen(workunit_id: int, now: datetime) -> bool:
    """An operator's retry of a failed work unit: the error is cleared and it starts over."""
    return bool(
        WorkUnit.objects.filter(
            id=workunit_id, error_mask__gt=0, canonical_replica__isnull=True
        ).update(
            error_mask=0,
            need_validate=False,
            assimilate_state=AssimilateState.INIT,
            file_delete_state=FileDeleteState.INIT,
            transition_time=now,
        )
    )


def move_assimilate_state(workunit_id: int, transition: str, **fields: object) -> bool:
    source, target = ASSIMILATE_TRANSITIONS[transition]
    return bool(
        WorkUnit.objects.filter(id=workunit_id, assimilate_state=source).update(
            assimilate_state=target, **fields
        )
    )


def move_file_delete_state(queryset: QuerySet[WorkUnit], transition: str, **fields: object) -> int:
    source, target = FILE_DELETE_TRANSITIONS[transition]
    return queryset.filter(file_delete_state=source).update(file_delete_state=target, **fields)
