"""BOINC's scheduler: which ready replicas a host may take, and how requests are shared out.

The rules live here; :mod:`compute.dispatch.leasing` applies them to every request of a
flush at once, reading the feeder's cache and writing the leases with a few set-based
statements. ``lease_replicas`` is the same path for one request, in the caller's thread and
transaction (commands, tests, the embedded demo's seeding).

Rules: one replica per host and per user of a work unit (also unique constraints, so a race
cannot break them); homogeneous redundancy; the app's requirements against the host; the
host's daily quota per app; work unit priority (the cache's order); fair share across the
projects the volunteer runs, weighted by resource share against recent credit; adaptive
replication decided at the first lease.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from compute import reliability

if TYPE_CHECKING:
    from compute.catalog import AppInfo
    from compute.dispatch.ops import HostRef
    from compute.models import Host


@dataclass(frozen=True)
class ProjectShare:
    project_id: int
    share: float
    recent_credit: float


@dataclass(frozen=True, slots=True)
class Assignment:
    replica_id: int
    workunit_id: int
    name: str
    project_slug: str
    app_id: int
    app_name: str
    version: int
    kernel_url: str
    kernel_sha256: str
    wasm_url: str
    wasm_sha256: str
    input_json: str  # the work unit's input as stored: JSON text, sent as it is
    deadline: datetime
    lease_token: str

    @property
    def input(self) -> Any:
        return json.loads(self.input_json)


def allocate_slots(n: int, shares: list[ProjectShare]) -> list[tuple[int, int]]:
    """Split ``n`` jobs across projects by resource share, favouring those behind on credit.

    Each project's debt is its share of the total resource share minus its share of recent
    credit; slots go in proportion to share, and the remainder to the largest debts first.
    Returns (project id, slots) in the order the projects should be served.
    """
    if n <= 0 or not shares:
        return []
    total_share = sum(s.share for s in shares) or 1.0
    total_credit = sum(s.recent_credit for s in shares)

    def debt(s: ProjectShare) -> float:
        used = s.recent_credit / total_credit if total_credit > 0 else 0.0
        return s.share / total_share - used

    ordered = sorted(shares, key=lambda s: (-debt(s), s.project_id))
    slots = {s.project_id: int(n * s.share / total_share) for s in ordered}
    remainder = n - sum(slots.values())
    for s in ordered[:remainder]:
        slots[s.project_id] += 1
    return [(s.project_id, slots[s.project_id]) for s in ordered]


def serving_order(want: int, shares: list[ProjectShare]) -> list[tuple[int, int]]:
    """(project, slots) in the order a request is served: first each project fills its own
    slots; then slots a project could not fill (no work, quota spent) pass to the others in
    the same order."""
    plan = allocate_slots(want, shares)
    return plan + [(p, want) for p, _ in plan]


def meets_requirements(host: HostRef | Host, app: AppInfo) -> bool:
    return (
        host.cores >= app.min_cores
        and (app.min_memory_mb == 0 or host.memory_mb >= app.min_memory_mb)
        and (host.has_wasm or not app.needs_wasm)
        and (host.has_simd or not app.needs_simd)
        and (host.has_threads or not app.needs_threads)
    )


@dataclass
class AdaptiveDecisions:
    alone: list[int]
    checked: list[int]
    replicated: list[int]


def decide_adaptive(
    app: AppInfo,
    workunit_ids: list[int],
    consecutive_valid: int,
    rng: random.Random | None,
) -> AdaptiveDecisions:
    """BOINC's adaptive replication, decided when the first replica of a work unit goes out:
    a trusted host computes it alone (a share of those results is spot-checked against the
    Python reference); otherwise the work unit takes the project's full quorum."""
    rng = rng or random.Random()
    decisions = AdaptiveDecisions([], [], [])
    for wu_id in workunit_ids:
        if reliability.is_trusted(consecutive_valid, rng):
            chosen = decisions.checked if rng.random() < app.spot_check_rate else decisions.alone
            chosen.append(wu_id)
        else:
            decisions.replicated.append(wu_id)
    return decisions


def escalate(workunit_ids: list[int], min_quorum: int, target: int, now: datetime) -> None:
    """Give adaptive work units the project's full quorum; the transitioner adds replicas."""
    from django.db import transaction

    from compute.models import WorkUnit
    from compute.states import Replication
    from compute.tasks import transition_workunits

    WorkUnit.objects.filter(id__in=workunit_ids).exclude(replication=Replication.ESCALATED).update(
        replication=Replication.ESCALATED,
        min_quorum=min_quorum,
        target_nresults=target,
        transition_time=now,
    )
    transaction.on_commit(lambda: transition_workunits.delay(workunit_ids), robust=True)


def lease_replicas(
    host: Host,
    want: int,
    *,
    project_ids: list[int] | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> list[Assignment]:
    """Lease up to ``want`` replicas to ``host``, within its prefetch limit: one request
    through the dispatch path, in the caller's thread."""
    from compute.dispatch import flush
    from compute.dispatch.ops import Failed, HostRef, Lease, Unavailable

    (assignments,) = flush.apply([Lease(HostRef.of(host, project_ids), want)], now=now, rng=rng)
    if isinstance(assignments, Failed):
        raise Unavailable("the dispatch cache is unavailable")
    return assignments
