"""The validator's verdicts, decided in Python for a batch of work units and written
set-based: the rows it reads, the rules it applies, and the :class:`Plan` of everything a
batch changes.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from compute import comparators, credit, notify, reliability
from compute.dispatch.dialect import Dialect
from compute.dotted import resolve
from compute.states import (
    ASSIMILATE_TRANSITIONS,
    REPLICA_TRANSITIONS,
    FileDeleteState,
    Replication,
    ValidateState,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppPolicy:
    """An app's comparator and reference, and its project's credit and quota policy."""

    id: int
    comparator: str
    tolerance: float
    comparator_path: str
    reference_path: str
    credit_policy: str
    max_credit_per_replica: float
    daily_quota_per_core: int
    min_quorum: int
    target_nresults: int


@dataclass(slots=True)
class WorkUnitRow:
    id: int
    app_id: int
    project_id: int
    input_json: str
    min_quorum: int
    target_nresults: int
    max_total_results: int
    replication: str
    spot_check: bool
    canonical_replica_id: int | None
    canonical_credit: float
    error_mask: int
    file_delete_state: str
    app: AppPolicy


@dataclass(slots=True)
class ReplicaRow:
    id: int
    workunit_id: int
    host_id: int | None
    user_id: int | None
    validate_state: str
    output_json: str | None
    cpu_time: float
    claimed_credit: float
    sent_at: datetime | None
    received_at: datetime | None
    _output: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def output(self) -> Any:
        if not self._parsed:
            self._output = None if self.output_json is None else json.loads(self.output_json)
            self._parsed = True
        return self._output


@dataclass(frozen=True)
class Verdict:
    workunit_id: int
    outcome: str
    valid: tuple[int, ...] = ()
    invalid: tuple[int, ...] = ()


# --- the rules -------------------------------------------------------------------------------


def decide(wu: WorkUnitRow, replicas: list[ReplicaRow], plan: Plan) -> Verdict:
    if wu.error_mask:
        return _no_check(wu, replicas, plan)
    if wu.canonical_replica_id is not None:
        return _check_late(wu, replicas, plan)
    return _seek_quorum(wu, replicas, plan)


def _agree(compare: Callable[[Any, Any], bool], a: ReplicaRow | Any, b: ReplicaRow | Any) -> bool:
    """Do two outputs (results, or a result and a reference's output) agree? Equal stored
    texts always do (a comparator holds a value equal to itself); otherwise the comparator
    decides on the parsed outputs."""
    if (
        isinstance(a, ReplicaRow)
        and isinstance(b, ReplicaRow)
        and a.output_json is not None
        and a.output_json == b.output_json
    ):
        return True
    try:
        return bool(compare(_value(a), _value(b)))
    except Exception:
        log.exception("comparator failed; treating outputs as different")
        return False


def _value(x: ReplicaRow | Any) -> Any:
    return x.output if isinstance(x, ReplicaRow) else x


def _claim(replica: ReplicaRow) -> float:
    """A claim may not count more CPU time than passed between lease and upload."""
    if replica.cpu_time <= 0 or replica.sent_at is None or replica.received_at is None:
        return replica.claimed_credit
    wall = (replica.received_at - replica.sent_at).total_seconds()
    return replica.claimed_credit * min(1.0, max(0.0, wall) / replica.cpu_time)


def _seek_quorum(wu: WorkUnitRow, replicas: list[ReplicaRow], plan: Plan) -> Verdict:
    candidates = [
        r for r in replicas if r.validate_state in (ValidateState.INIT, ValidateState.INCONCLUSIVE)
    ]
    if len(candidates) < wu.min_quorum:
        return Verdict(wu.id, "waiting for quorum")
    compare = comparators.for_app(wu.app)

    if wu.replication == Replication.UNREPLICATED and wu.spot_check:
        single = candidates[0]
        reference = resolve(wu.app.reference_path)(json.loads(wu.input_json))
        if not _agree(compare, single, reference):
            plan.mark([single], valid=False)
            plan.settle(wu, [], [single], 0.0)
            plan.escalated.append(wu)
            return Verdict(wu.id, "spot check failed", (), (single.id,))

    best: list[ReplicaRow] = []
    for c in candidates:
        group = [d for d in candidates if d is c or _agree(compare, c, d)]
        if len(group) > len(best):
            best = group
    if len(best) < wu.min_quorum // 2 + 1:
        plan.states["validate_inconclusive"] += [
            c.id for c in candidates if c.validate_state == ValidateState.INIT
        ]
        # One more replica, up to the cap; the transitioner creates it or fails the work unit.
        wu.target_nresults = min(max(wu.target_nresults, len(candidates) + 1), wu.max_total_results)
        plan.targets.append(wu)
        return Verdict(wu.id, "inconclusive")

    canonical = best[0]
    invalid = [c for c in candidates if c not in best]
    amount = credit.granted_amount(
        [_claim(r) for r in best], wu.app.credit_policy, wu.app.max_credit_per_replica
    )
    plan.mark(best, valid=True, amount=amount)
    plan.mark(invalid, valid=False)
    wu.canonical_replica_id, wu.canonical_credit = canonical.id, amount
    plan.canonical.append(wu)
    plan.settle(wu, best, invalid, amount)
    return Verdict(wu.id, "valid", tuple(r.id for r in best), tuple(r.id for r in invalid))


def _check_late(wu: WorkUnitRow, replicas: list[ReplicaRow], plan: Plan) -> Verdict:
    new = [r for r in replicas if r.validate_state == ValidateState.INIT]
    canonical = next((r for r in replicas if r.id == wu.canonical_replica_id), None)
    if canonical is None or wu.file_delete_state == FileDeleteState.DONE:
        plan.states["too_late"] += [r.id for r in new]
        return Verdict(wu.id, "too late")
    compare = comparators.for_app(wu.app)
    valid = [r for r in new if _agree(compare, canonical, r)]
    invalid = [r for r in new if r not in valid]
    plan.mark(valid, valid=True, amount=wu.canonical_credit)
    plan.mark(invalid, valid=False)
    plan.settle(wu, valid, invalid, wu.canonical_credit)
    return Verdict(wu.id, "checked late", tuple(r.id for r in valid), tuple(r.id for r in invalid))


def _no_check(wu: WorkUnitRow, replicas: list[ReplicaRow], plan: Plan) -> Verdict:
    plan.states["no_check"] += [r.id for r in replicas if r.validate_state == ValidateState.INIT]
    plan.states["no_check_inconclusive"] += [
        r.id for r in replicas if r.validate_state == ValidateState.INCONCLUSIVE
    ]
    return Verdict(wu.id, "work unit failed; not checked")


# --- the plan and its statements ---------------------------------------------------------------

MOVE_REPLICAS = """
WITH {rows}
UPDATE compute_replica
SET validate_state = v.v_to, granted_credit = COALESCE(v.v_granted, granted_credit)
FROM v
WHERE id = v.v_id AND server_state = %s AND outcome = %s
  AND validate_state = v.v_from
"""

CANONICAL = """
WITH {rows}
UPDATE compute_workunit
SET canonical_replica_id = v.v_canonical, canonical_credit = v.v_credit, validated_at = %s,
    assimilate_state = CASE WHEN assimilate_state = %s THEN %s ELSE assimilate_state END
FROM v WHERE id = v.v_wu
"""

NOT_NEEDED = """
UPDATE compute_replica SET server_state = %s, outcome = %s, validate_state = %s
WHERE workunit_id {ids} AND server_state = %s AND outcome = %s AND validate_state = %s
"""

TARGETS = """
WITH {rows}
UPDATE compute_workunit
SET target_nresults = v.v_target,
    transition_time = CASE WHEN transition_time IS NULL OR transition_time > %s THEN %s
                           ELSE transition_time END
FROM v WHERE id = v.v_wu
"""

COUNT_VERDICTS = """
WITH {rows}
UPDATE compute_host SET n_valid = n_valid + v.v_valid, n_invalid = n_invalid + v.v_invalid
FROM v WHERE id = v.v_host
"""


def _validated_states() -> tuple[str, str]:
    """The server state and outcome every transition of a verdict starts and ends in."""
    (pair,) = {
        (state[0], state[1]) for name in Plan.TRANSITIONS for state in REPLICA_TRANSITIONS[name]
    }
    return pair


@dataclass
class Plan:
    """Everything a batch of verdicts changes, written at once by :meth:`apply`."""

    TRANSITIONS = (
        "validate_valid",
        "validate_invalid",
        "validate_inconclusive",
        "resolve_valid",
        "resolve_invalid",
        "too_late",
        "no_check",
        "no_check_inconclusive",
    )

    now: datetime
    states: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    granted: dict[int, float] = field(default_factory=dict)  # replica id -> credit
    canonical: list[WorkUnitRow] = field(default_factory=list)
    targets: list[WorkUnitRow] = field(default_factory=list)
    escalated: list[WorkUnitRow] = field(default_factory=list)
    grants: list[credit.Grant] = field(default_factory=list)
    valid_pairs: list[tuple[int, int]] = field(default_factory=list)  # (host, app)
    invalid_pairs: list[tuple[int, int]] = field(default_factory=list)
    quota_caps: dict[int, int] = field(default_factory=dict)  # app -> daily quota cap

    def mark(self, replicas: list[ReplicaRow], *, valid: bool, amount: float = 0.0) -> None:
        for r in replicas:
            retried = r.validate_state == ValidateState.INCONCLUSIVE
            name = ("resolve_" if retried else "validate_") + ("valid" if valid else "invalid")
            self.states[name].append(r.id)
            if valid:
                self.granted[r.id] = amount

    def settle(
        self, wu: WorkUnitRow, valid: list[ReplicaRow], invalid: list[ReplicaRow], amount: float
    ) -> None:
        self.quota_caps[wu.app_id] = wu.app.daily_quota_per_core
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

    def apply(self, sql: Dialect) -> list[tuple[str, list]]:
        """Write the verdicts, except the statements returned: the counts of verdicts on
        the hosts, then the reliability records of their apps, for the caller to send last,
        with its commit where it can (a flush leasing to these hosts counts their jobs on
        the same records and waits for their locks while this transaction holds them)."""
        self._move_replicas(sql)
        if self.canonical:
            self._canonical(sql)
        if self.targets:
            cte, params = sql.rows(
                "v",
                (("v_wu", "bigint"), ("v_target", "bigint")),
                [(wu.id, wu.target_nresults) for wu in self.targets],
            )
            sql.execute(sql.format(TARGETS, rows=cte), [*params, self.now, self.now])
        for wu in self.escalated:
            from compute.models import WorkUnit
            from compute.scheduler import escalate

            WorkUnit.objects.filter(id=wu.id).update(spot_check=False)
            escalate([wu.id], wu.app.min_quorum, wu.app.target_nresults, self.now)
        granted = credit.grant(self.grants, self.now)
        if granted:
            transaction.on_commit(lambda: notify.credit_granted(granted))
        if self.canonical:
            from compute.drains import request_assimilation

            transaction.on_commit(request_assimilation)
        if self.targets:
            from compute.tasks import transition_workunits

            ids = [wu.id for wu in self.targets]
            transaction.on_commit(lambda: transition_workunits.delay(ids))
        closing = [
            self._count_verdicts(sql),
            reliability.record_valid_statement(self.valid_pairs, self.quota_caps, sql),
            reliability.record_failure_statement(self.invalid_pairs, sql),
        ]
        return [statement for statement in closing if statement is not None]

    def _move_replicas(self, sql: Dialect) -> None:
        rows = []
        for name, ids in self.states.items():
            (_, _, source), (_, _, target) = REPLICA_TRANSITIONS[name]
            rows += [(i, source, target, self.granted.get(i)) for i in ids]
        if not rows:
            return
        server_state, outcome = _validated_states()
        cte, params = sql.rows(
            "v",
            (("v_id", "bigint"), ("v_from", "text"), ("v_to", "text"), ("v_granted", "float8")),
            rows,
        )
        sql.execute(sql.format(MOVE_REPLICAS, rows=cte), [*params, server_state, outcome])

    def _canonical(self, sql: Dialect) -> None:
        cte, params = sql.rows(
            "v",
            (("v_wu", "bigint"), ("v_canonical", "bigint"), ("v_credit", "float8")),
            [(wu.id, wu.canonical_replica_id, wu.canonical_credit) for wu in self.canonical],
        )
        sql.execute(
            sql.format(CANONICAL, rows=cte),
            [*params, self.now, *ASSIMILATE_TRANSITIONS["ready"]],
        )
        # Unsent replicas of validated work units will never be sent.
        source, target = REPLICA_TRANSITIONS["not_needed"]
        ids, params = sql.ids([wu.id for wu in self.canonical])
        sql.execute(sql.format(NOT_NEEDED, ids=ids), [*target, *params, *source])

    def _count_verdicts(self, sql: Dialect) -> tuple[str, list] | None:
        valid = Counter(h for h, _ in self.valid_pairs)
        invalid = Counter(h for h, _ in self.invalid_pairs)
        rows = [(h, valid[h], invalid[h]) for h in sorted(valid.keys() | invalid.keys())]
        if not rows:
            return None
        cte, params = sql.rows(
            "v", (("v_host", "bigint"), ("v_valid", "bigint"), ("v_invalid", "bigint")), rows
        )
        return sql.format(COUNT_VERDICTS, rows=cte), params
