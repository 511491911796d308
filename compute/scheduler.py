"""Pick ready replicas for a host and lease them: BOINC's scheduler, reading the feeder cache.

One call serves one volunteer request. It pops candidates from the dispatch cache, checks
them against the rules below with a few indexed queries over just those candidates, and
leases the ones that pass in one conditional UPDATE per app. It never scans the replica
table.

Rules: one replica per host and per user of a work unit (also unique constraints, so a race
cannot break them); homogeneous redundancy; the app's requirements against the host; the
host's daily quota per app; work unit priority (the cache's order); and fair share across
the projects the volunteer runs, weighted by resource share against recent credit.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from compute import feeder, lifecycle, reliability, retry
from compute.catalog import AppInfo, catalog
from compute.models import Host, Membership, Replica, Volunteer, WorkUnit
from compute.states import MembershipState, Replication, ServerState

log = logging.getLogger(__name__)

# A request pops a few more candidates than it wants, since some may be refused.
OVERFETCH = 4
MAX_ROUNDS = 4


@dataclass(frozen=True)
class ProjectShare:
    project_id: int
    share: float
    recent_credit: float


@dataclass(frozen=True)
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
    input: object
    deadline: datetime
    lease_token: str


@dataclass
class _Candidates:
    accepted: list[feeder.Entry] = field(default_factory=list)
    returned: list[feeder.Entry] = field(default_factory=list)
    workunits: dict[int, dict] = field(default_factory=dict)  # id -> the columns a lease needs


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


def project_shares(host: Host, project_ids: list[int] | None = None) -> list[ProjectShare]:
    """The projects a host works for: its user's active memberships, or, for an anonymous host
    (an embedded plugin), the projects named by the caller."""
    if host.user_id is None:
        return [ProjectShare(p, 100.0, 0.0) for p in (project_ids or [])]
    memberships = Membership.objects.filter(
        user_id=host.user_id, state=MembershipState.ACTIVE, no_more_work=False
    )
    if project_ids is not None:
        memberships = memberships.filter(project_id__in=project_ids)
    return [
        ProjectShare(m.project_id, float(m.resource_share), m.rac)
        for m in memberships.only("project_id", "resource_share", "rac")
    ]


def host_in_flight(host: Host) -> int | None:
    """How many replicas the host holds, or None when it (or its user) is banned. Read
    fresh, in one query: a ban takes effect on the next request, not the next connection."""
    banned_user = Volunteer.objects.filter(user_id=OuterRef("user_id"), banned=True)
    holding = (
        Replica.objects.filter(host_id=OuterRef("id"), server_state=ServerState.IN_PROGRESS)
        .order_by()
        .values("host_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    row = (
        Host.objects.filter(id=host.id, banned=False)
        .exclude(Exists(banned_user))
        .annotate(n=Coalesce(Subquery(holding), 0))
        .values_list("n", flat=True)
        .first()
    )
    return row


def lease_replicas(
    host: Host,
    want: int,
    *,
    project_ids: list[int] | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> list[Assignment]:
    """Lease up to ``want`` replicas to ``host``, within its prefetch limit."""
    now = now or timezone.now()
    if want <= 0:
        return []
    holding = host_in_flight(host)
    if holding is None:
        return []
    limit = settings.COMPUTE["PREFETCH_PER_CORE"] * max(1, host.cores)
    want = min(want, limit - holding)
    if want <= 0:
        return []
    shares = project_shares(host, project_ids)
    apps_by_project: dict[int, list[AppInfo]] = defaultdict(list)
    for app in catalog.for_projects({s.project_id for s in shares}):
        if _meets_requirements(host, app):
            apps_by_project[app.project_id].append(app)
    shares = [s for s in shares if apps_by_project.get(s.project_id)]
    if not shares:
        return []

    today = now.date()
    records = reliability.ensure_records(
        host.id,
        {a.id: a.daily_quota_per_core for apps in apps_by_project.values() for a in apps},
        today,
    )
    assignments: list[Assignment] = []
    plan = allocate_slots(want, shares)
    # First each project fills its own slots; then slots a project could not fill (no work,
    # quota spent) pass to the others in the same order.
    for project_id, slots in plan + [(p, want) for p, _ in plan]:
        goal = min(want, len(assignments) + slots)
        for app in apps_by_project[project_id]:
            missing = goal - len(assignments)
            if missing <= 0:
                break
            record = records[app.id]
            take = min(missing, reliability.jobs_left_today(record, host.cores, today))
            if take > 0:
                try:
                    got = _lease_from_app(host, app, take, record, now, rng)
                except Exception:
                    if not assignments:
                        raise
                    # Replicas of another app are leased already (committed): hand them out
                    # rather than lose them to an error reply until their deadline.
                    log.exception("lease for host %s stopped after %d", host.id, len(assignments))
                    return assignments
                record.jobs_today = (record.jobs_today if record.quota_day == today else 0) + len(
                    got
                )
                record.quota_day = today
                assignments += got
    return assignments


def _meets_requirements(host: Host, app: AppInfo) -> bool:
    return (
        host.cores >= app.min_cores
        and (app.min_memory_mb == 0 or host.memory_mb >= app.min_memory_mb)
        and (host.has_wasm or not app.needs_wasm)
        and (host.has_simd or not app.needs_simd)
        and (host.has_threads or not app.needs_threads)
    )


def _lease_from_app(
    host: Host,
    app: AppInfo,
    want: int,
    record: reliability.HostApp,
    now: datetime,
    rng: random.Random | None,
) -> list[Assignment]:
    """Pop, screen and lease until ``want`` replicas are leased or the queue has nothing
    this host can take. Stale entries (leased elsewhere, finished work units) are dropped and
    more are popped, a few rounds at most; entries for other hosts go back at the end.

    Each round's lease commits on its own. If the dispatch cache fails after a round has
    leased something (Redis going away mid-request), what is leased is returned, not lost to
    an error the volunteer could only retry; entries the cache loses come back with the
    feeder's next pass."""
    queue = feeder.get_queue()
    leased: list[Assignment] = []
    returned: list[feeder.Entry] = []
    refilled = False
    try:
        for _ in range(MAX_ROUNDS):
            missing = want - len(leased)
            entries = queue.pop(app.id, missing + OVERFETCH)
            if len(entries) < missing and not refilled:
                # The cache ran dry: refill it now rather than wait for the periodic feeder.
                feeder.refill(app.id, queue=queue)
                refilled = True
                entries += queue.pop(app.id, missing + OVERFETCH - len(entries))
            if not entries:
                break
            try:
                picked, got = _screen_and_lease(host, app, entries, missing, record, now, rng)
            except Exception:
                feeder.push_back(app.id, entries, queue)
                raise
            leased += got
            returned += picked.returned
            if len(leased) >= want:
                break
    except Exception:
        if not leased:
            raise
        log.exception("lease for host %s stopped after %d of app %s", host.id, len(leased), app.id)
    finally:
        try:
            feeder.push_back(app.id, returned, queue)
        except Exception:
            log.warning("%d entries not returned to the dispatch cache", len(returned))
    return leased


@retry.on_conflict()
@transaction.atomic
def _screen_and_lease(
    host: Host,
    app: AppInfo,
    entries: list[feeder.Entry],
    want: int,
    record: reliability.HostApp,
    now: datetime,
    rng: random.Random | None,
) -> tuple[_Candidates, list[Assignment]]:
    picked = _screen(host, app, entries, want)
    return picked, _lease(host, app, picked.accepted, picked.workunits, record, now, rng)


def _screen(host: Host, app: AppInfo, entries: list[feeder.Entry], want: int) -> _Candidates:
    """Sort popped entries into those this host may take and those to return for others.
    Entries of finished work units are simply dropped."""
    wu_ids = {e.workunit_id for e in entries}
    workunits = {
        row["id"]: row
        for row in WorkUnit.objects.filter(id__in=wu_ids).values(
            "id",
            "error_mask",
            "canonical_replica_id",
            "hr_class",
            "name",
            "input",
            "delay_bound",
            "replication",
        )
    }
    mine = Q(host_id=host.id)
    if host.user_id is not None:
        mine |= Q(user_id=host.user_id)
    taken_here = set(
        Replica.objects.filter(mine, workunit_id__in=wu_ids).values_list("workunit_id", flat=True)
    )
    out = _Candidates(workunits=workunits)
    for entry in sorted(entries):
        wu = workunits.get(entry.workunit_id)
        if wu is None or wu["error_mask"] or wu["canonical_replica_id"] is not None:
            continue
        if (
            entry.workunit_id in taken_here
            or len(out.accepted) >= want
            or (app.homogeneous_redundancy and wu["hr_class"] not in ("", host.platform_class))
        ):
            out.returned.append(entry)
            continue
        taken_here.add(entry.workunit_id)
        out.accepted.append(entry)
    return out


def _lease(
    host: Host,
    app: AppInfo,
    entries: list[feeder.Entry],
    rows: dict[int, dict],
    record: reliability.HostApp,
    now: datetime,
    rng: random.Random | None,
) -> list[Assignment]:
    if not entries:
        return []
    wu_ids = [e.workunit_id for e in entries]
    if app.homogeneous_redundancy:
        # Claim unclassed work units for this host's platform class; a concurrent claim by
        # another class wins the race and those work units drop out here.
        WorkUnit.objects.filter(id__in=wu_ids, hr_class="").update(hr_class=host.platform_class)
        ok = set(
            WorkUnit.objects.filter(id__in=wu_ids, hr_class=host.platform_class).values_list(
                "id", flat=True
            )
        )
        entries = [e for e in entries if e.workunit_id in ok]

    token = secrets.token_hex(16)
    by_delay: dict[int, list[int]] = defaultdict(list)
    for e in entries:
        by_delay[rows[e.workunit_id]["delay_bound"]].append(e.replica_id)
    leased_ids: set[int] = set()
    for delay, replica_ids in by_delay.items():
        leased_ids |= _lease_rows(
            host, app, replica_ids, token, now, now + timedelta(seconds=delay)
        )
    if not leased_ids:
        return []

    leased = [e for e in entries if e.replica_id in leased_ids]
    reliability.count_jobs(host.id, app.id, len(leased), now.date())
    _decide_adaptive(
        app,
        [
            e.workunit_id
            for e in leased
            if rows[e.workunit_id]["replication"] == Replication.ADAPTIVE_PENDING
        ],
        record.consecutive_valid,
        now,
        rng,
    )
    return [
        Assignment(
            replica_id=e.replica_id,
            workunit_id=e.workunit_id,
            name=rows[e.workunit_id]["name"],
            project_slug=app.project_slug,
            app_id=app.id,
            app_name=app.name,
            version=app.version or 0,
            kernel_url=app.kernel_url,
            kernel_sha256=app.kernel_sha256,
            wasm_url=app.wasm_url,
            wasm_sha256=app.wasm_sha256,
            input=rows[e.workunit_id]["input"],
            deadline=now + timedelta(seconds=rows[e.workunit_id]["delay_bound"]),
            lease_token=token,
        )
        for e in leased
    ]


def _lease_rows(
    host: Host, app: AppInfo, replica_ids: list[int], token: str, now: datetime, deadline: datetime
) -> set[int]:
    fields = {
        "host_id": host.id,
        "user_id": host.user_id,
        "app_version_id": app.version_id,
        "token": token,
        "sent_at": now,
        "deadline": deadline,
    }
    try:
        with transaction.atomic():
            lifecycle.lease(replica_ids, **fields)
    except IntegrityError:
        # A concurrent lease gave this host or user another replica of one of these work
        # units; lease one by one so only the conflicting rows are skipped.
        for replica_id in replica_ids:
            try:
                with transaction.atomic():
                    lifecycle.lease([replica_id], **fields)
            except IntegrityError:
                continue
    return set(
        Replica.objects.filter(
            id__in=replica_ids,
            host_id=host.id,
            lease_token=token,
            server_state=ServerState.IN_PROGRESS,
        ).values_list("id", flat=True)
    )


def _decide_adaptive(
    app: AppInfo,
    workunit_ids: list[int],
    consecutive_valid: int,
    now: datetime,
    rng: random.Random | None,
) -> None:
    """BOINC's adaptive replication, decided when the first replica of a work unit goes out:
    a trusted host computes it alone (a share of those results is spot-checked against the
    Python reference); otherwise the work unit takes the project's full quorum."""
    if not workunit_ids:
        return
    rng = rng or random.Random()
    alone, checked, replicated = [], [], []
    for wu_id in workunit_ids:
        if reliability.is_trusted(consecutive_valid, rng):
            (checked if rng.random() < app.spot_check_rate else alone).append(wu_id)
        else:
            replicated.append(wu_id)
    pending = WorkUnit.objects.filter(replication=Replication.ADAPTIVE_PENDING)
    if alone:
        pending.filter(id__in=alone).update(replication=Replication.UNREPLICATED)
    if checked:
        pending.filter(id__in=checked).update(replication=Replication.UNREPLICATED, spot_check=True)
    if replicated:
        escalate(replicated, app.min_quorum, app.target_nresults, now)


def escalate(workunit_ids: list[int], min_quorum: int, target: int, now: datetime) -> None:
    """Give adaptive work units the project's full quorum; the transitioner adds replicas."""
    from compute.tasks import transition_workunits

    WorkUnit.objects.filter(id__in=workunit_ids).exclude(replication=Replication.ESCALATED).update(
        replication=Replication.ESCALATED,
        min_quorum=min_quorum,
        target_nresults=target,
        transition_time=now,
    )
    transaction.on_commit(lambda: transition_workunits.delay(workunit_ids), robust=True)
