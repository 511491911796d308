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

Work units are validated in batches: the verdicts are decided in Python, one work unit at a
time, into a :class:`Plan`, and the plan is then written with a handful of statements for the
whole batch (replica states, canonical replicas, the credit ledger, totals, reliability),
so the cost per work unit is a small share of a few queries instead of twenty.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compute import comparators, credit, lifecycle, notify, reliability, retry
from compute.dotted import resolve
from compute.models import Host, Replica, WorkUnit
from compute.states import FileDeleteState, Outcome, Replication, ValidateState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    workunit_id: int
    outcome: str
    valid: tuple[int, ...] = ()
    invalid: tuple[int, ...] = ()


@dataclass
class Plan:
    """Everything a batch of verdicts changes, written at once by :meth:`apply`."""

    now: datetime
    states: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    granted: dict[int, float] = field(default_factory=dict)  # replica id -> credit
    canonical: list[WorkUnit] = field(default_factory=list)
    targets: list[WorkUnit] = field(default_factory=list)
    escalated: list[WorkUnit] = field(default_factory=list)
    grants: list[credit.Grant] = field(default_factory=list)
    valid_pairs: list[tuple[int, int]] = field(default_factory=list)  # (host, app)
    invalid_pairs: list[tuple[int, int]] = field(default_factory=list)
    quota_caps: dict[int, int] = field(default_factory=dict)  # app -> daily quota cap

    def mark(self, replicas: list[Replica], *, valid: bool, amount: float = 0.0) -> None:
        for r in replicas:
            retried = r.validate_state == ValidateState.INCONCLUSIVE
            name = ("resolve_" if retried else "validate_") + ("valid" if valid else "invalid")
            self.states[name].append(r.id)
            if valid:
                self.granted[r.id] = amount

    def settle(
        self, wu: WorkUnit, valid: list[Replica], invalid: list[Replica], amount: float
    ) -> None:
        self.quota_caps[wu.app_id] = wu.project.daily_quota_per_core
        for r in valid:
            self.grants.append(
                credit.Grant(
                    replica_id=r.id,
                    workunit_id=wu.id,
                    project_id=wu.project_id,
                    host_id=r.host_id,
                    user_id=r.user_id,
                    amount=amount,
                    sent_at=r.sent_at,
                )
            )
            if r.host_id:
                self.valid_pairs.append((r.host_id, wu.app_id))
        self.invalid_pairs += [(r.host_id, wu.app_id) for r in invalid if r.host_id]

    def apply(self) -> None:
        for name, ids in self.states.items():
            lifecycle.set_validate_state(ids, name)
        if self.granted:
            rows = [Replica(id=i, granted_credit=amount) for i, amount in self.granted.items()]
            Replica.objects.bulk_update(rows, ["granted_credit"], batch_size=500)
        if self.canonical:
            WorkUnit.objects.bulk_update(
                self.canonical,
                ["canonical_replica", "canonical_credit", "validated_at"],
                batch_size=500,
            )
            ids = [wu.id for wu in self.canonical]
            lifecycle.move_assimilate_states(ids, "ready")
            lifecycle.not_needed(ids)
        if self.targets:
            WorkUnit.objects.bulk_update(self.targets, ["target_nresults"], batch_size=500)
            lifecycle.flag_transition([wu.id for wu in self.targets], self.now)
        for wu in self.escalated:
            from compute.scheduler import escalate

            WorkUnit.objects.filter(id=wu.id).update(spot_check=False)
            escalate([wu.id], wu.project.min_quorum, wu.project.target_nresults, self.now)
        granted = credit.grant(self.grants, self.now)
        reliability.record_valid(self.valid_pairs, self.quota_caps)
        reliability.record_failure(self.invalid_pairs)
        _count_verdicts(self.valid_pairs, "n_valid")
        _count_verdicts(self.invalid_pairs, "n_invalid")
        if granted:
            transaction.on_commit(lambda: notify.credit_granted(granted))
        if self.canonical:
            from compute.drains import request_assimilation

            transaction.on_commit(request_assimilation)
        if self.targets:
            from compute.tasks import transition_workunits

            ids = [wu.id for wu in self.targets]
            transaction.on_commit(lambda: transition_workunits.delay(ids))


def _count_verdicts(pairs: list[tuple[int, int]], field_name: str) -> None:
    per_count: dict[int, list[int]] = defaultdict(list)
    for host_id, n in Counter(h for h, _ in pairs).items():
        per_count[n].append(host_id)
    for n, host_ids in per_count.items():
        Host.objects.filter(id__in=host_ids).update(**{field_name: F(field_name) + n})


def validate_pending(limit: int | None = None, now: datetime | None = None) -> list[Verdict]:
    """The validator sweep: work units flagged need-validate, oldest first, in batches."""
    limit = limit or settings.COMPUTE["SWEEP_BATCH"]
    ids = list(
        WorkUnit.objects.filter(need_validate=True)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    verdicts: list[Verdict] = []
    for start in range(0, len(ids), BATCH):
        verdicts += validate_workunits(ids[start : start + BATCH], now=now)
    return verdicts


BATCH = 200


def validate_workunit(workunit_id: int, now: datetime | None = None) -> Verdict:
    verdicts = validate_workunits([workunit_id], now=now)
    return verdicts[0] if verdicts else Verdict(workunit_id, "nothing to do")


@retry.on_conflict()
def validate_workunits(workunit_ids: list[int], now: datetime | None = None) -> list[Verdict]:
    """Validate a batch of work units in one transaction. Work units another validator holds
    are skipped (it is validating them), as are those no longer flagged."""
    now = now or timezone.now()
    with transaction.atomic():
        workunits = list(
            WorkUnit.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
            .select_related("app", "project")
            .filter(id__in=workunit_ids, need_validate=True)
            .order_by("id")
        )
        if not workunits:
            return []
        by_wu: dict[int, list[Replica]] = defaultdict(list)
        for r in Replica.objects.filter(
            workunit_id__in=[wu.id for wu in workunits], outcome=Outcome.SUCCESS
        ).order_by("received_at", "id"):
            by_wu[r.workunit_id].append(r)
        plan = Plan(now)
        verdicts = []
        for wu in workunits:
            replicas = by_wu[wu.id]
            if wu.error_mask:
                verdicts.append(_no_check(wu, replicas, plan))
            elif wu.canonical_replica_id is not None:
                verdicts.append(_check_late(wu, replicas, plan))
            else:
                verdicts.append(_seek_quorum(wu, replicas, plan))
        plan.apply()
        WorkUnit.objects.filter(id__in=[wu.id for wu in workunits]).update(need_validate=False)
        return verdicts


def _agree(compare: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    try:
        return bool(compare(a, b))
    except Exception:
        log.exception("comparator failed; treating outputs as different")
        return False


def _claim(replica: Replica) -> float:
    """A claim may not count more CPU time than passed between lease and upload."""
    if replica.cpu_time <= 0 or replica.sent_at is None or replica.received_at is None:
        return replica.claimed_credit
    wall = (replica.received_at - replica.sent_at).total_seconds()
    return replica.claimed_credit * min(1.0, max(0.0, wall) / replica.cpu_time)


def _seek_quorum(wu: WorkUnit, replicas: list[Replica], plan: Plan) -> Verdict:
    candidates = [
        r for r in replicas if r.validate_state in (ValidateState.INIT, ValidateState.INCONCLUSIVE)
    ]
    if len(candidates) < wu.min_quorum:
        return Verdict(wu.id, "waiting for quorum")
    compare = comparators.for_app(wu.app)

    if wu.replication == Replication.UNREPLICATED and wu.spot_check:
        single = candidates[0]
        reference = resolve(wu.app.reference_path)(wu.input)
        if not _agree(compare, single.output, reference):
            plan.mark([single], valid=False)
            plan.settle(wu, [], [single], 0.0)
            plan.escalated.append(wu)
            return Verdict(wu.id, "spot check failed", (), (single.id,))

    best: list[Replica] = []
    for c in candidates:
        group = [d for d in candidates if d is c or _agree(compare, c.output, d.output)]
        if len(group) > len(best):
            best = group
    if len(best) < wu.min_quorum // 2 + 1:
        new = [c.id for c in candidates if c.validate_state == ValidateState.INIT]
        plan.states["validate_inconclusive"] += new
        # One more replica, up to the cap; the transitioner creates it or fails the work unit.
        wu.target_nresults = min(max(wu.target_nresults, len(candidates) + 1), wu.max_total_results)
        plan.targets.append(wu)
        return Verdict(wu.id, "inconclusive")

    canonical = best[0]
    invalid = [c for c in candidates if c not in best]
    amount = credit.granted_amount(
        [_claim(r) for r in best], wu.project.credit_policy, wu.project.max_credit_per_replica
    )
    plan.mark(best, valid=True, amount=amount)
    plan.mark(invalid, valid=False)
    wu.canonical_replica, wu.canonical_credit, wu.validated_at = canonical, amount, plan.now
    plan.canonical.append(wu)
    plan.settle(wu, best, invalid, amount)
    return Verdict(wu.id, "valid", tuple(r.id for r in best), tuple(r.id for r in invalid))


def _check_late(wu: WorkUnit, replicas: list[Replica], plan: Plan) -> Verdict:
    new = [r for r in replicas if r.validate_state == ValidateState.INIT]
    canonical = next((r for r in replicas if r.id == wu.canonical_replica_id), None)
    if canonical is None or wu.file_delete_state == FileDeleteState.DONE:
        plan.states["too_late"] += [r.id for r in new]
        return Verdict(wu.id, "too late")
    compare = comparators.for_app(wu.app)
    valid = [r for r in new if _agree(compare, canonical.output, r.output)]
    invalid = [r for r in new if r not in valid]
    plan.mark(valid, valid=True, amount=wu.canonical_credit)
    plan.mark(invalid, valid=False)
    plan.settle(wu, valid, invalid, wu.canonical_credit)
    return Verdict(wu.id, "checked late", tuple(r.id for r in valid), tuple(r.id for r in invalid))


def _no_check(wu: WorkUnit, replicas: list[Replica], plan: Plan) -> Verdict:
    plan.states["no_check"] += [r.id for r in replicas if r.validate_state == ValidateState.INIT]
    plan.states["no_check_inconclusive"] += [
        r.id for r in replicas if r.validate_state == ValidateState.INCONCLUSIVE
    ]
    return Verdict(wu.id, "work unit failed; not checked")
