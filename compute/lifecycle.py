"""The only code that moves replicas and work units between states.

Every move is one conditional UPDATE guarded by the state it leaves (see
:mod:`compute.states`), so a duplicate, late or concurrent caller changes nothing and
learns so from the row count. Callers decide *when* to move; this module guarantees the
move is legal and atomic.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery

from compute.models import Replica, WorkUnit
from compute.states import (
    ASSIMILATE_TRANSITIONS,
    FILE_DELETE_TRANSITIONS,
    REPLICA_TRANSITIONS,
    AssimilateState,
    FileDeleteState,
    Outcome,
    ServerState,
    ValidateState,
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


def lease(
    replica_ids: Iterable[int],
    *,
    host_id: int,
    user_id: int | None,
    app_version_id: int,
    token: str,
    sent_at: datetime,
    deadline: datetime,
) -> int:
    return move_replicas(
        Replica.objects.filter(id__in=list(replica_ids)),
        "lease",
        host_id=host_id,
        user_id=user_id,
        app_version_id=app_version_id,
        lease_token=token,
        sent_at=sent_at,
        deadline=deadline,
    )


def _own_lease(replica_id: int, host_id: int, token: str, now: datetime) -> QuerySet[Replica]:
    # A result counts only from the host the replica was leased to, with the lease's token,
    # before its deadline. Anything else matches no row.
    return Replica.objects.filter(
        id=replica_id, host_id=host_id, lease_token=token, deadline__gte=now
    )


def report_success(
    replica_id: int,
    *,
    host_id: int,
    token: str,
    output: object,
    cpu_time: float,
    claimed_credit: float,
    now: datetime,
) -> bool:
    return bool(
        move_replicas(
            _own_lease(replica_id, host_id, token, now),
            "report_success",
            output=output,
            cpu_time=cpu_time,
            claimed_credit=claimed_credit,
            received_at=now,
        )
    )


def report_error(replica_id: int, *, host_id: int, token: str, reason: str, now: datetime) -> bool:
    return bool(
        move_replicas(
            _own_lease(replica_id, host_id, token, now),
            "report_error",
            error_reason=reason[:500],
            received_at=now,
        )
    )


def extend_deadline(
    replica_id: int, *, host_id: int, token: str, new_deadline: datetime, now: datetime
) -> bool:
    """Push an in-progress lease's deadline out (a progress report, BOINC's trickle-up)."""
    return bool(
        _own_lease(replica_id, host_id, token, now)
        .filter(server_state=ServerState.IN_PROGRESS, deadline__lt=new_deadline)
        .update(deadline=new_deadline)
    )


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


def flag_need_validate(workunit_id: int) -> bool:
    """Set need-validate once a work unit has a new successful result and either enough
    candidates to try for a quorum or a canonical result to check it against. The caller
    holds the work unit's row lock (``results.record_result``), so results of one work unit
    are counted one after the other and concurrent ones cannot both miss the quorum."""
    new = Replica.objects.filter(
        workunit_id=OuterRef("pk"), outcome=Outcome.SUCCESS, validate_state=ValidateState.INIT
    )
    candidates = (
        Replica.objects.filter(
            workunit_id=OuterRef("pk"),
            outcome=Outcome.SUCCESS,
            validate_state__in=[ValidateState.INIT, ValidateState.INCONCLUSIVE],
        )
        .order_by()
        .values("workunit_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return bool(
        WorkUnit.objects.filter(id=workunit_id, need_validate=False, error_mask=0)
        .filter(Exists(new))
        .annotate(n_candidates=Subquery(candidates))
        .filter(Q(canonical_replica__isnull=False) | Q(n_candidates__gte=F("min_quorum")))
        .update(need_validate=True)
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


def move_assimilate_states(workunit_ids: Iterable[int], transition: str, **fields: object) -> int:
    source, target = ASSIMILATE_TRANSITIONS[transition]
    return WorkUnit.objects.filter(id__in=list(workunit_ids), assimilate_state=source).update(
        assimilate_state=target, **fields
    )


def move_file_delete_state(queryset: QuerySet[WorkUnit], transition: str, **fields: object) -> int:
    source, target = FILE_DELETE_TRANSITIONS[transition]
    return queryset.filter(file_delete_state=source).update(file_delete_state=target, **fields)
