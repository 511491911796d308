"""Leases for every request of a flush at once: BOINC's scheduler reading the feeder's cache.

The rules are :mod:`compute.scheduler`'s; this module applies them with a fixed number of
statements per flush, whatever the number of requests:

1. the hosts' standing (banned, replicas held) and the signed-in volunteers' memberships;
2. their quota records for the apps they may run (created when missing);
3. candidates popped from the cache per app, for all requests of the app together, and the
   work units behind them with the ones these hosts or users already hold;
4. each request served in turn from those candidates in Python (fair share, quota,
   homogeneous redundancy, one replica per host and per user of a work unit);
5. one conditional UPDATE leasing everything chosen, one for the quota counters, and the
   adaptive-replication decisions of work units leased for the first time.

Candidates the hosts could not take go back into the cache; stale ones (finished work
units, replicas leased by another process meanwhile) are dropped, since the database
decides and the feeder brings back what is still unsent.
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction

from compute.catalog import AppInfo, catalog
from compute.dispatch.candidates import Candidates
from compute.dispatch.dialect import Dialect
from compute.dispatch.ops import HostRef, Lease
from compute.reliability import LOCK_RECORDS
from compute.scheduler import (
    Assignment,
    ProjectShare,
    allocate_slots,
    decide_adaptive,
    meets_requirements,
    serving_order,
)
from compute.states import REPLICA_TRANSITIONS, MembershipState, Replication, ServerState

# Each host's standing (banned, replicas held) and its quota records, one row per record
# (or one with no record).
STANDING = """
SELECT h.id, h.banned OR EXISTS (
         SELECT 1 FROM compute_volunteer v WHERE v.user_id = h.user_id AND v.banned
       ),
       (SELECT count(*) FROM compute_replica r WHERE r.host_id = h.id AND r.server_state = %s),
       q.app_id, q.consecutive_valid, q.daily_quota, q.jobs_today, q.quota_day
FROM compute_host h LEFT JOIN compute_hostapp q ON q.host_id = h.id
WHERE h.id {ids}
"""

MEMBERSHIPS = """
SELECT user_id, project_id, resource_share, rac FROM compute_membership
WHERE user_id {ids} AND state = %s AND no_more_work = false ORDER BY id
"""

QUOTAS = """
WITH {rows}
SELECT q.host_id, q.app_id, q.consecutive_valid, q.daily_quota, q.jobs_today, q.quota_day
FROM compute_hostapp q JOIN v ON q.host_id = v.v_host AND q.app_id = v.v_app
"""

CREATE_QUOTAS = """
WITH {rows}
INSERT INTO compute_hostapp (host_id, app_id, consecutive_valid, daily_quota, jobs_today, quota_day)
SELECT v.v_host, v.v_app, 0, v.v_quota, 0, %s FROM v WHERE true
ON CONFLICT (host_id, app_id) DO NOTHING
"""

LEASE = """
WITH {rows}
UPDATE compute_replica AS r
SET server_state = %s, outcome = %s, validate_state = %s, host_id = v.v_host,
    user_id = v.v_user, app_version_id = v.v_version, lease_token = v.v_token, sent_at = %s,
    deadline = v.v_deadline
FROM v
WHERE r.id = v.v_id AND r.server_state = %s AND r.outcome = %s
  AND r.validate_state = %s
RETURNING id, host_id
"""

LEASE_COLUMNS = (
    ("v_id", "bigint"),
    ("v_host", "bigint"),
    ("v_user", "bigint"),
    ("v_version", "bigint"),
    ("v_token", "text"),
    ("v_deadline", "timestamptz"),
)

# The jobs this flush leased, counted against the quotas from the rows the lease wrote (its
# replicas, this flush's time and tokens), so it needs nothing back from the lease and goes
# to the database with it.
# The records are locked in the order of their ids first, as every statement that writes
# several of them does (compute.reliability).
COUNT_JOBS = f"""
WITH c AS (
    SELECT host_id, app_id, count(*) AS n FROM compute_replica
    WHERE id {{ids}} AND sent_at = %s AND lease_token {{tokens}}
    GROUP BY host_id, app_id
), {LOCK_RECORDS.format(host="host_id", app="app_id", pairs="c")}
UPDATE compute_hostapp AS q
SET jobs_today = CASE WHEN q.quota_day = %s THEN q.jobs_today + c.n ELSE c.n END, quota_day = %s
FROM locked, c
WHERE q.id = locked.id AND q.host_id = c.host_id AND q.app_id = c.app_id
"""

CLAIM_CLASS = """
WITH {rows}
UPDATE compute_workunit SET hr_class = v.v_class
FROM v WHERE id = v.v_wu AND hr_class = ''
"""

ADAPTIVE = """
UPDATE compute_workunit SET replication = %s, spot_check = %s
WHERE id {ids} AND replication = %s
"""

ESCALATE = """
UPDATE compute_workunit
SET replication = %s, min_quorum = %s, target_nresults = %s, transition_time = %s
WHERE id {ids} AND replication <> %s
"""


@dataclass
class Quota:
    """A host's record with an app (BOINC's host_app_version), as this flush sees it."""

    consecutive_valid: int
    daily_quota: int
    jobs_today: int
    quota_day: date

    def left_today(self, cores: int, today: date) -> int:
        used = self.jobs_today if self.quota_day == today else 0
        return max(0, self.daily_quota * max(1, cores) - used)

    def count(self, n: int, today: date) -> None:
        self.jobs_today = (self.jobs_today if self.quota_day == today else 0) + n
        self.quota_day = today


@dataclass
class Request:
    op: Lease
    index: int
    room: int  # replicas the host may still take (prefetch limit, this flush included)
    apps: dict[int, list[AppInfo]]  # project -> the apps of it the host can run
    shares: list[ProjectShare]
    token: str
    chosen: list[tuple[AppInfo, int, int]]  # (app, replica id, work unit id)


@dataclass
class Leasing:
    """A flush's requests, served: what to write, and how to read the answers back."""

    requests: list[Request]
    candidates: Candidates
    quotas: dict[tuple[int, int], Quota]
    now: datetime
    rng: random.Random | None
    rows: list[tuple] = field(default_factory=list)  # the lease statement's rows

    def statements(self, sql: Dialect) -> list[tuple[str, list]]:
        """The lease and the count of jobs against the quotas, for the flush to send with
        its own last statement."""
        if not self.rows:
            return []
        cte, params = sql.rows("v", LEASE_COLUMNS, self.rows)
        ids, id_params = sql.ids(sorted({row[0] for row in self.rows}))
        tokens, token_params = sql.texts(sorted({row[4] for row in self.rows}))
        source, target = REPLICA_TRANSITIONS["lease"]
        today = self.now.date()
        return [
            (
                sql.format(LEASE, rows=cte),
                [*params, *target, self.now, *source],
            ),
            (
                sql.format(COUNT_JOBS, ids=ids, tokens=tokens),
                [*id_params, self.now, *token_params, today, today],
            ),
        ]

    def settled(self) -> bool:
        """Do the answers read back without a statement? Not where adaptive replication
        has to decide (and write) for a work unit whose replication is still pending."""
        return not any(
            self.candidates.replication(wu_id) == Replication.ADAPTIVE_PENDING
            for r in self.requests
            for _, _, wu_id in r.chosen
        )

    def answers(
        self, sql: Dialect, ops: Sequence[Lease], lease_rows: list[tuple]
    ) -> list[list[Assignment]]:
        """Assignments from what the lease statement returned: a replica counts only for
        the host it was leased to."""
        leased = {(replica_id, host_id) for replica_id, host_id in lease_rows}
        _adaptive(sql, self.requests, self.candidates, leased, self.quotas, self.now, self.rng)
        answers: list[list[Assignment]] = [[] for _ in ops]
        for r in self.requests:
            answers[r.index] = [
                _assignment(self.candidates, app, replica_id, wu_id, r.token, self.now)
                for app, replica_id, wu_id in r.chosen
                if (replica_id, r.op.host.id) in leased
            ]
        return answers


def standing_statement(sql: Dialect, ops: Sequence[Lease]) -> tuple[str, list] | None:
    """The read of the requesting hosts' standing and quota records, for the flush to send
    with its results (it must see them: a result frees its host's slot)."""
    host_ids = sorted({op.host.id for op in ops if op.want > 0})
    if not host_ids:
        return None
    ids, params = sql.ids(host_ids)
    return sql.format(STANDING, ids=ids), [ServerState.IN_PROGRESS, *params]


def memberships_statement(sql: Dialect, ops: Sequence[Lease]) -> tuple[str, list] | None:
    """The read of the signed-in requesting hosts' memberships, for the flush to send with
    its first statement (the rows go to :func:`plan`)."""
    user_ids = sorted({op.host.user_id for op in ops if op.want > 0} - {None})
    if not user_ids:
        return None
    ids, params = sql.ids(user_ids)
    return sql.format(MEMBERSHIPS, ids=ids), [*params, MembershipState.ACTIVE]


def ahead(ops: Sequence[Lease]) -> dict[int, int]:
    """Candidates to pop per app before the hosts' standing is read, so that their read
    rides with the flush's first statement: what each anonymous host asks for, on the first
    runnable app of each project it names, as if it had room and quota for all of it. A
    host with less room takes less (the rest goes back to the cache); a signed-in host's
    projects are its memberships, read with that statement, and its request pops in
    :func:`plan`."""
    prefetch = settings.COMPUTE["PREFETCH_PER_CORE"]
    demand: dict[int, int] = defaultdict(int)
    for op in ops:
        host = op.host
        if op.want <= 0 or host.user_id is not None:
            continue
        shares = _shares(host, {})
        apps = _runnable(host, shares)
        shares = [s for s in shares if apps.get(s.project_id)]
        _add_demand(demand, min(op.want, prefetch * host.cores), shares, apps)
    return demand


def plan(
    sql: Dialect,
    ops: Sequence[Lease],
    candidates: Candidates,
    now: datetime,
    rng: random.Random | None,
    standing: list[tuple] | None = None,
    membership_rows: list[tuple] | None = None,
) -> Leasing:
    """Serve every request in ``ops`` from the cache's candidates; the caller writes the
    leases (:meth:`Leasing.statements`), reads the answers back (:meth:`Leasing.answers`),
    and hands the candidates no request took back to the cache once it has committed (or
    all of them, if it failed). ``standing`` and ``membership_rows`` are the rows of
    :func:`standing_statement` and :func:`memberships_statement` where the caller sent
    them; they are read here otherwise."""
    today = now.date()
    if standing is None:
        statement = standing_statement(sql, ops)
        standing = sql.execute(*statement) if statement else []
    if membership_rows is None:
        statement = memberships_statement(sql, ops)
        membership_rows = sql.execute(*statement) if statement else []
    requests, quotas = _requests(sql, ops, standing, _memberships(membership_rows), today)
    leasing = Leasing(requests, candidates, quotas, now, rng)
    if not requests:
        return leasing
    candidates.prefetch(_demand(requests, quotas, today))
    for request in requests:
        _serve(request, candidates, quotas, today)
    leasing.rows = [
        (
            replica_id,
            r.op.host.id,
            r.op.host.user_id,
            app.version_id,
            r.token,
            now + timedelta(seconds=candidates.workunit(wu_id).delay_bound),
        )
        for r, app, replica_id, wu_id in _claim_classes(sql, requests, candidates)
    ]
    return leasing


def _demand(
    requests: list[Request], quotas: dict[tuple[int, int], Quota], today: date
) -> dict[int, int]:
    """How many candidates to pop per app for the whole flush: each request's first-pass
    slots, on the first app of each project it may still use today. Shortfalls pop more."""
    demand: dict[int, int] = defaultdict(int)
    for r in requests:
        host = r.op.host
        _add_demand(
            demand,
            r.room,
            r.shares,
            r.apps,
            lambda app, host=host: quotas[(host.id, app.id)].left_today(host.cores, today) > 0,
        )
    return demand


def _add_demand(
    demand: dict[int, int],
    room: int,
    shares: list[ProjectShare],
    apps: dict[int, list[AppInfo]],
    usable: Callable[[AppInfo], bool] | None = None,
) -> None:
    """Add each project's share of ``room`` slots to the first of its apps that is
    ``usable`` (the first of all, without it)."""
    for project_id, slots in allocate_slots(room, shares):
        if slots <= 0:
            continue
        for app in apps[project_id]:
            if usable is None or usable(app):
                demand[app.id] += slots
                break


def _requests(
    sql: Dialect,
    ops: Sequence[Lease],
    standing_rows: list[tuple],
    memberships: dict[int, list[tuple[int, float, float]]],
    today: date,
) -> tuple[list[Request], dict[tuple[int, int], Quota]]:
    """The requests that may lease anything (host not banned, room under its prefetch
    limit, projects with runnable apps), and their hosts' quota records."""
    wanting = [(i, op) for i, op in enumerate(ops) if op.want > 0]
    if not wanting:
        return [], {}
    standing: dict[int, int | None] = {}
    quotas: dict[tuple[int, int], Quota] = {}
    for host_id, banned, held, app_id, valid, quota, jobs, day in standing_rows:
        standing[host_id] = None if banned else held
        if app_id is not None:
            quotas[(host_id, app_id)] = Quota(valid, quota, jobs, sql.read_date(day))
    prefetch = settings.COMPUTE["PREFETCH_PER_CORE"]
    requests = []
    for i, op in wanting:
        host = op.host
        held = standing.get(host.id)
        if held is None:
            continue
        room = prefetch * host.cores - held
        if room <= 0:
            continue
        # Two sockets of one host in one flush: the second sees what the first took.
        standing[host.id] = held + min(room, op.want)
        shares = _shares(host, memberships)
        apps = _runnable(host, shares)
        shares = [s for s in shares if apps.get(s.project_id)]
        if shares:
            requests.append(
                Request(op, i, min(room, op.want), apps, shares, secrets.token_hex(16), [])
            )
    _create_quotas(sql, requests, quotas, today)
    return requests, quotas


def _memberships(rows: list[tuple]) -> dict[int, list[tuple[int, float, float]]]:
    per_user: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for user_id, project_id, share, rac in rows:
        per_user[user_id].append((project_id, float(share), rac))
    return per_user


def _runnable(host: HostRef, shares: list[ProjectShare]) -> dict[int, list[AppInfo]]:
    """Per project of ``shares``, the apps of it the host can run."""
    apps: dict[int, list[AppInfo]] = defaultdict(list)
    for app in catalog.for_projects({s.project_id for s in shares}):
        if meets_requirements(host, app):
            apps[app.project_id].append(app)
    return apps


def _shares(host: HostRef, memberships: dict[int, list]) -> list[ProjectShare]:
    """The projects a host works for: its user's active memberships (those named, if any),
    or, for an anonymous host (an embedded plugin), the projects it named."""
    if host.user_id is None:
        return [ProjectShare(p, 100.0, 0.0) for p in host.project_ids or ()]
    named = None if host.project_ids is None else set(host.project_ids)
    return [
        ProjectShare(p, share, rac)
        for p, share, rac in memberships.get(host.user_id, ())
        if named is None or p in named
    ]


def _create_quotas(
    sql: Dialect, requests: list[Request], quotas: dict[tuple[int, int], Quota], today: date
) -> None:
    """Quota records for the apps a host runs for the first time, with the project's quota."""
    missing = {
        (r.op.host.id, app.id): app.daily_quota_per_core
        for r in requests
        for apps in r.apps.values()
        for app in apps
        if (r.op.host.id, app.id) not in quotas
    }
    if not missing:
        return
    rows = [(h, a, q) for (h, a), q in sorted(missing.items())]
    cte, params = sql.rows(
        "v", (("v_host", "bigint"), ("v_app", "bigint"), ("v_quota", "bigint")), rows
    )
    sql.execute(sql.format(CREATE_QUOTAS, rows=cte), [*params, today])
    cte, params = sql.rows("v", (("v_host", "bigint"), ("v_app", "bigint")), list(missing))
    for host, app, valid, quota, jobs, day in sql.execute(sql.format(QUOTAS, rows=cte), params):
        quotas[(host, app)] = Quota(valid, quota, jobs, sql.read_date(day))


def _serve(
    request: Request, candidates: Candidates, quotas: dict[tuple[int, int], Quota], today: date
) -> None:
    host, want = request.op.host, request.room
    for project_id, slots in serving_order(want, request.shares):
        goal = min(want, len(request.chosen) + slots)
        for app in request.apps[project_id]:
            missing = goal - len(request.chosen)
            if missing <= 0:
                break
            quota = quotas[(host.id, app.id)]
            take = min(missing, quota.left_today(host.cores, today))
            if take > 0:
                got = candidates.take(app, host, take)
                quota.count(len(got), today)
                request.chosen += [(app, replica_id, wu_id) for replica_id, wu_id in got]


def _claim_classes(
    sql: Dialect, requests: list[Request], candidates: Candidates
) -> list[tuple[Request, AppInfo, int, int]]:
    """Homogeneous redundancy: claim unclassed work units for the platform class of the host
    that takes their first replica. A concurrent claim by another class (another process)
    wins the race, and those replicas are not leased."""
    claims = {
        wu_id: r.op.host.platform_class
        for r in requests
        for app, _, wu_id in r.chosen
        if app.homogeneous_redundancy and candidates.claimed_here(wu_id)
    }
    classes: dict[int, str] = {}
    if claims:
        cte, params = sql.rows(
            "v", (("v_wu", "bigint"), ("v_class", "text")), sorted(claims.items())
        )
        sql.execute(sql.format(CLAIM_CLASS, rows=cte), params)
        ids, params = sql.ids(sorted(claims))
        classes = dict(
            sql.execute(f"SELECT id, hr_class FROM compute_workunit WHERE id {ids}", params)
        )
    chosen = []
    for r in requests:
        for app, replica_id, wu_id in r.chosen:
            if wu_id in classes and classes[wu_id] != r.op.host.platform_class:
                continue
            chosen.append((r, app, replica_id, wu_id))
    return chosen


def _adaptive(
    sql: Dialect,
    requests: list[Request],
    candidates: Candidates,
    leased: set[tuple[int, int]],
    quotas: dict[tuple[int, int], Quota],
    now: datetime,
    rng: random.Random | None,
) -> None:
    for r in requests:
        per_app: dict[int, tuple[AppInfo, list[int]]] = {}
        for app, replica_id, wu_id in r.chosen:
            if (replica_id, r.op.host.id) in leased and candidates.replication(wu_id) == (
                Replication.ADAPTIVE_PENDING
            ):
                per_app.setdefault(app.id, (app, []))[1].append(wu_id)
        for app, wu_ids in per_app.values():
            valid = quotas[(r.op.host.id, app.id)].consecutive_valid
            decisions = decide_adaptive(app, wu_ids, valid, rng)
            for ids, spot_check in ((decisions.alone, False), (decisions.checked, True)):
                if ids:
                    in_ids, params = sql.ids(ids)
                    sql.execute(
                        sql.format(ADAPTIVE, ids=in_ids),
                        [Replication.UNREPLICATED, spot_check, *params,
                         Replication.ADAPTIVE_PENDING],
                    )  # fmt: skip
            if decisions.replicated:
                _escalate(sql, app, decisions.replicated, now)


def _escalate(sql: Dialect, app: AppInfo, workunit_ids: list[int], now: datetime) -> None:
    from compute.tasks import transition_workunits

    ids, params = sql.ids(workunit_ids)
    sql.execute(
        sql.format(ESCALATE, ids=ids),
        [Replication.ESCALATED, app.min_quorum, app.target_nresults, now, *params,
         Replication.ESCALATED],
    )  # fmt: skip
    transaction.on_commit(lambda: transition_workunits.delay(workunit_ids), robust=True)


def _assignment(
    candidates: Candidates, app: AppInfo, replica_id: int, wu_id: int, token: str, now: datetime
) -> Assignment:
    wu = candidates.workunit(wu_id)
    return Assignment(
        replica_id=replica_id,
        workunit_id=wu_id,
        name=wu.name,
        project_slug=app.project_slug,
        app_id=app.id,
        app_name=app.name,
        version=app.version or 0,
        kernel_url=app.kernel_url,
        kernel_sha256=app.kernel_sha256,
        wasm_url=app.wasm_url,
        wasm_sha256=app.wasm_sha256,
        input_json=wu.input_json,
        deadline=now + timedelta(seconds=wu.delay_bound),
        lease_token=token,
    )
