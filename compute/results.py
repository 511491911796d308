"""Results and errors coming back from volunteers.

A result is written by one conditional UPDATE (right host, right lease token, still in
progress, before the deadline), so a replay, a late upload or a forged replica id changes
nothing; the caller gets the reason. Validation is queued only when the work unit reaches
its quorum.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compute import credit, lifecycle, reliability, retry
from compute.catalog import catalog
from compute.models import Host, Replica, WorkUnit
from compute.numbers import finite_float
from compute.states import ServerState


class Refusal(enum.StrEnum):
    UNKNOWN_REPLICA = "unknown_replica"
    NOT_YOURS = "not_yours"
    BAD_LEASE = "bad_lease"
    NOT_IN_PROGRESS = "not_in_progress"
    LEASE_EXPIRED = "lease_expired"
    OUTPUT_TOO_LARGE = "output_too_large"
    BAD_CPU_TIME = "bad_cpu_time"


@dataclass(frozen=True)
class Receipt:
    accepted: bool
    refusal: Refusal | None = None
    workunit_id: int | None = None
    validation_queued: bool = False
    deadline: datetime | None = None

    @classmethod
    def refused(cls, reason: Refusal) -> Receipt:
        return cls(False, reason)


def _lease_row(replica_id: int) -> dict | None:
    return (
        Replica.objects.filter(id=replica_id)
        .values("id", "workunit_id", "app_id", "host_id", "lease_token", "server_state", "deadline")
        .first()
    )


def _lock_workunit_of(replica_id: int) -> int | None:
    """Lock the replica's work unit for this transaction and return its id.

    Results for one work unit are thereby recorded one after the other: the need-validate
    check counts committed results, and two concurrent results could otherwise each see only
    itself and neither reach the quorum."""
    return (
        WorkUnit.objects.select_for_update(of=("self",), no_key=True)
        .filter(replicas__id=replica_id)
        .values_list("id", flat=True)
        .first()
    )


def _check_lease(row: dict | None, host: Host, token: str, now: datetime) -> Refusal | None:
    if row is None:
        return Refusal.UNKNOWN_REPLICA
    if row["host_id"] != host.id:
        return Refusal.NOT_YOURS
    if row["lease_token"] != token:
        return Refusal.BAD_LEASE
    if row["server_state"] != ServerState.IN_PROGRESS:
        return Refusal.NOT_IN_PROGRESS
    if row["deadline"] is None or row["deadline"] < now:
        return Refusal.LEASE_EXPIRED
    return None


@retry.on_conflict()
def record_result(
    host: Host,
    replica_id: int,
    token: str,
    output: object,
    cpu_time: float,
    now: datetime | None = None,
) -> Receipt:
    now = now or timezone.now()
    cpu_seconds = finite_float(cpu_time)
    if cpu_seconds is None or cpu_seconds < 0:
        return Receipt.refused(Refusal.BAD_CPU_TIME)
    if len(json.dumps(output, separators=(",", ":"))) > settings.COMPUTE["MAX_OUTPUT_BYTES"]:
        return Receipt.refused(Refusal.OUTPUT_TOO_LARGE)
    with transaction.atomic():
        workunit_id = _lock_workunit_of(replica_id)
        if workunit_id is None:
            return Receipt.refused(Refusal.UNKNOWN_REPLICA)
        if not lifecycle.report_success(
            replica_id,
            host_id=host.id,
            token=token,
            output=output,
            cpu_time=cpu_seconds,
            claimed_credit=credit.claimed_credit(host.benchmark_fpops, cpu_seconds),
            now=now,
        ):
            # Nothing was written; say why.
            return Receipt.refused(
                _check_lease(_lease_row(replica_id), host, token, now) or Refusal.NOT_IN_PROGRESS
            )
        queued = lifecycle.flag_need_validate(workunit_id)
        if queued:
            from compute.drains import request_validation

            # Robust: the result is committed; if the request cannot be queued (Redis is
            # restarting), the flag stays set and the validator's sweep finds the work unit.
            transaction.on_commit(request_validation, robust=True)
    return Receipt(True, workunit_id=workunit_id, validation_queued=queued)


@retry.on_conflict()
def record_error(
    host: Host, replica_id: int, token: str, reason: str, now: datetime | None = None
) -> Receipt:
    """A client error (the kernel failed, the volunteer aborted): the replica is over, the
    host's quota shrinks and the transitioner decides whether to send another copy."""
    now = now or timezone.now()
    row = _lease_row(replica_id)
    refusal = _check_lease(row, host, token, now)
    if refusal:
        return Receipt.refused(refusal)
    with transaction.atomic():
        if not lifecycle.report_error(
            replica_id, host_id=host.id, token=token, reason=str(reason), now=now
        ):
            return Receipt.refused(Refusal.NOT_IN_PROGRESS)
        reliability.record_failure([(host.id, row["app_id"])])
        Host.objects.filter(id=host.id).update(n_error=F("n_error") + 1)
        workunit_id = row["workunit_id"]
        lifecycle.flag_transition([workunit_id], now)
        from compute.tasks import transition_workunits

        transaction.on_commit(lambda: transition_workunits.delay([workunit_id]), robust=True)
    return Receipt(True, workunit_id=workunit_id)


def extend_lease(
    host: Host, replica_id: int, token: str, fraction_done: float, now: datetime | None = None
) -> Receipt:
    """A progress report keeps a lease alive: the deadline may move to ``now`` plus the time
    the remaining work should take at the observed pace, within the project's limit past
    the original deadline."""
    now = now or timezone.now()
    row = (
        Replica.objects.filter(id=replica_id)
        .values(
            "id",
            "workunit_id",
            "app_id",
            "host_id",
            "lease_token",
            "server_state",
            "deadline",
            "sent_at",
            "workunit__delay_bound",
        )
        .first()
    )
    refusal = _check_lease(row, host, token, now)
    if refusal:
        return Receipt.refused(refusal)
    app = catalog.get(row["app_id"])
    limit = row["sent_at"] + timedelta(
        seconds=row["workunit__delay_bound"] + (app.max_deadline_extension if app else 0)
    )
    fraction_done = min(max(float(fraction_done), 0.0), 1.0)
    elapsed = (now - row["sent_at"]).total_seconds()
    if fraction_done > 0:
        remaining = elapsed * (1.0 - fraction_done) / fraction_done
        # Capped at the limit before it becomes a timedelta: a tiny fraction would overflow.
        seconds = min(remaining * 1.5 + 60, max(0.0, (limit - now).total_seconds()))
        wanted = now + timedelta(seconds=seconds)
    else:
        wanted = row["deadline"]
    new_deadline = min(max(wanted, row["deadline"]), limit)
    if new_deadline > row["deadline"]:
        lifecycle.extend_deadline(
            replica_id, host_id=host.id, token=token, new_deadline=new_deadline, now=now
        )
    return Receipt(True, workunit_id=row["workunit_id"], deadline=new_deadline)
