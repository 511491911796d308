"""The validator: find a quorum of agreeing results, pick the canonical one, grant credit.

A work unit is validated when need-validate is set (see ``lifecycle.flag_need_validate``).
With no canonical result yet, the successful replicas are grouped by the app's comparator;
a group holding a strict majority of the minimum quorum wins. Its first member becomes
canonical, its members valid, the rest invalid, and each valid replica is granted credit
once. Without agreement the candidates are inconclusive and the work unit asks for one
more replica (up to its cap). Replicas that return after the canonical one are checked
against it.

Unreplicated results (adaptive replication) are accepted alone, except for the share chosen
for a spot check: those are re-computed by the app's Python reference, and a mismatch
marks the result invalid and gives the work unit the project's full quorum.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compute import comparators, credit, lifecycle, notify, reliability, retry
from compute.dotted import resolve
from compute.models import Host, Replica, WorkUnit
from compute.states import (
    FileDeleteState,
    Outcome,
    Replication,
    ValidateState,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    workunit_id: int
    outcome: str
    valid: tuple[int, ...] = ()
    invalid: tuple[int, ...] = ()


def validate_pending(limit: int | None = None, now: datetime | None = None) -> list[Verdict]:
    """The validator sweep: every work unit flagged need-validate, oldest first."""
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    ids = list(
        WorkUnit.objects.filter(need_validate=True)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return [validate_workunit(i, now=now) for i in ids]


@retry.on_conflict()
def validate_workunit(workunit_id: int, now: datetime | None = None) -> Verdict:
    now = now or timezone.now()
    with transaction.atomic():
        wu = (
            WorkUnit.objects.select_for_update(of=("self",), no_key=True)
            .select_related("app", "project")
            .filter(id=workunit_id)
            .first()
        )
        if wu is None or not wu.need_validate:
            return Verdict(workunit_id, "nothing to do")
        replicas = list(wu.replicas.filter(outcome=Outcome.SUCCESS).order_by("received_at", "id"))
        if wu.error_mask:
            verdict = _no_check(wu, replicas)
        elif wu.canonical_replica_id is not None:
            verdict = _check_late(wu, replicas, now)
        else:
            verdict = _seek_quorum(wu, replicas, now)
        WorkUnit.objects.filter(id=wu.id).update(need_validate=False)
        return verdict


def _agree(compare: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    try:
        return bool(compare(a, b))
    except Exception:
        log.exception("comparator failed; treating outputs as different")
        return False


def _seek_quorum(wu: WorkUnit, replicas: list[Replica], now: datetime) -> Verdict:
    candidates = [
        r for r in replicas if r.validate_state in (ValidateState.INIT, ValidateState.INCONCLUSIVE)
    ]
    if len(candidates) < wu.min_quorum:
        return Verdict(wu.id, "waiting for quorum")
    compare = comparators.for_app(wu.app)

    if wu.replication == Replication.UNREPLICATED and wu.spot_check:
        (single,) = candidates[:1]
        reference = resolve(wu.app.reference_path)(wu.input)
        if not _agree(compare, single.output, reference):
            return _fail_spot_check(wu, single, now)

    best: list[Replica] = []
    for c in candidates:
        group = [d for d in candidates if d is c or _agree(compare, c.output, d.output)]
        if len(group) > len(best):
            best = group
    if len(best) < wu.min_quorum // 2 + 1:
        return _inconclusive(wu, candidates, now)

    canonical = best[0]
    invalid = [c for c in candidates if c not in best]
    amount = credit.granted_amount(
        [_claim(r) for r in best], wu.project.credit_policy, wu.project.max_credit_per_replica
    )
    _mark(best, valid=True, amount=amount)
    _mark(invalid, valid=False)
    WorkUnit.objects.filter(id=wu.id).update(
        canonical_replica=canonical, canonical_credit=amount, validated_at=now
    )
    lifecycle.move_assimilate_state(wu.id, "ready")
    lifecycle.not_needed([wu.id])
    _settle(wu, best, invalid, amount, now)
    _queue_assimilation(wu.id)
    return Verdict(wu.id, "valid", tuple(r.id for r in best), tuple(r.id for r in invalid))


def _claim(replica: Replica) -> float:
    """A claim may not count more CPU time than passed between lease and upload."""
    if replica.cpu_time <= 0 or replica.sent_at is None or replica.received_at is None:
        return replica.claimed_credit
    wall = (replica.received_at - replica.sent_at).total_seconds()
    return replica.claimed_credit * min(1.0, max(0.0, wall) / replica.cpu_time)


def _check_late(wu: WorkUnit, replicas: list[Replica], now: datetime) -> Verdict:
    new = [r for r in replicas if r.validate_state == ValidateState.INIT]
    canonical = next((r for r in replicas if r.id == wu.canonical_replica_id), None)
    if canonical is None or wu.file_delete_state == FileDeleteState.DONE:
        lifecycle.set_validate_state([r.id for r in new], "too_late")
        return Verdict(wu.id, "too late")
    compare = comparators.for_app(wu.app)
    valid = [r for r in new if _agree(compare, canonical.output, r.output)]
    invalid = [r for r in new if r not in valid]
    _mark(valid, valid=True, amount=wu.canonical_credit)
    _mark(invalid, valid=False)
    _settle(wu, valid, invalid, wu.canonical_credit, now)
    return Verdict(wu.id, "checked late", tuple(r.id for r in valid), tuple(r.id for r in invalid))


def _inconclusive(wu: WorkUnit, candidates: list[Replica], now: datetime) -> Verdict:
    lifecycle.set_validate_state(
        [c.id for c in candidates if c.validate_state == ValidateState.INIT],
        "validate_inconclusive",
    )
    # One more replica, up to the cap; the transitioner creates it or fails the work unit.
    target = min(max(wu.target_nresults, len(candidates) + 1), wu.max_total_results)
    WorkUnit.objects.filter(id=wu.id).update(target_nresults=target)
    lifecycle.flag_transition([wu.id], now)
    _queue_transition(wu.id)
    return Verdict(wu.id, "inconclusive")


def _fail_spot_check(wu: WorkUnit, replica: Replica, now: datetime) -> Verdict:
    from compute.scheduler import escalate

    _mark([replica], valid=False)
    if replica.host_id:
        reliability.record_failure([(replica.host_id, wu.app_id)])
        Host.objects.filter(id=replica.host_id).update(n_invalid=F("n_invalid") + 1)
    WorkUnit.objects.filter(id=wu.id).update(spot_check=False)
    escalate([wu.id], wu.project.min_quorum, wu.project.target_nresults, now)
    return Verdict(wu.id, "spot check failed", (), (replica.id,))


def _no_check(wu: WorkUnit, replicas: list[Replica]) -> Verdict:
    lifecycle.set_validate_state(
        [r.id for r in replicas if r.validate_state == ValidateState.INIT], "no_check"
    )
    lifecycle.set_validate_state(
        [r.id for r in replicas if r.validate_state == ValidateState.INCONCLUSIVE],
        "no_check_inconclusive",
    )
    return Verdict(wu.id, "work unit failed; not checked")


def _mark(replicas: list[Replica], *, valid: bool, amount: float = 0.0) -> None:
    new = [r.id for r in replicas if r.validate_state == ValidateState.INIT]
    retried = [r.id for r in replicas if r.validate_state == ValidateState.INCONCLUSIVE]
    extra = {"granted_credit": amount} if valid else {}
    lifecycle.set_validate_state(new, "validate_valid" if valid else "validate_invalid", **extra)
    lifecycle.set_validate_state(retried, "resolve_valid" if valid else "resolve_invalid", **extra)


def _settle(
    wu: WorkUnit, valid: list[Replica], invalid: list[Replica], amount: float, now: datetime
) -> None:
    """Credit, reliability and host counters for a set of verdicts."""
    granted = credit.grant(
        [
            credit.Grant(
                replica_id=r.id,
                workunit_id=wu.id,
                project_id=wu.project_id,
                host_id=r.host_id,
                user_id=r.user_id,
                amount=amount,
                sent_at=r.sent_at,
            )
            for r in valid
        ],
        now,
    )
    cap = {wu.app_id: wu.project.daily_quota_per_core}
    reliability.record_valid([(r.host_id, wu.app_id) for r in valid if r.host_id], cap)
    reliability.record_failure([(r.host_id, wu.app_id) for r in invalid if r.host_id])
    if valid:
        Host.objects.filter(id__in=[r.host_id for r in valid]).update(n_valid=F("n_valid") + 1)
    if invalid:
        Host.objects.filter(id__in=[r.host_id for r in invalid]).update(
            n_invalid=F("n_invalid") + 1
        )
    if granted:
        transaction.on_commit(lambda: notify.credit_granted(granted))


def _queue_assimilation(workunit_id: int) -> None:
    from compute.tasks import assimilate_workunit

    transaction.on_commit(lambda: assimilate_workunit.delay(workunit_id))


def _queue_transition(workunit_id: int) -> None:
    from compute.tasks import transition_workunits

    transaction.on_commit(lambda: transition_workunits.delay([workunit_id]))
