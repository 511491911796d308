"""Credit: claimed from a host's benchmark, granted once per valid replica, averaged the
BOINC way.

- Claimed credit is cobblestones: a host computing at 1 GFLOPS for a day earns 200.
- Granted credit is the minimum (or the average, per project) of the valid replicas' claims,
  each capped by the project. A replica is granted at most once: the ledger row carries a
  unique replica id, so a second grant fails in the database, not in a Python check.
- Recent average credit (RAC) decays with a one-week half-life (BOINC's ``update_average``).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Exp

from compute import signals
from compute.models import CreditEntry, Host, Membership, Project, Volunteer
from compute.models.project import CreditPolicy

COBBLESTONE_SCALE = 200.0 / (86400.0 * 1e9)
HALF_LIFE = 7 * 86400.0
LN2 = math.log(2)
FIRST_PERIOD = 86400.0


def claimed_credit(benchmark_fpops: float, cpu_time: float) -> float:
    return max(0.0, benchmark_fpops) * max(0.0, cpu_time) * COBBLESTONE_SCALE


def capped(claim: float, cap: float) -> float:
    return min(claim, cap) if cap > 0 else claim


def granted_amount(claims: list[float], policy: str, cap: float) -> float:
    claims = [capped(c, cap) for c in claims]
    if not claims:
        return 0.0
    if policy == CreditPolicy.AVERAGE:
        return sum(claims) / len(claims)
    return min(claims)


def update_average(
    avg: float, avg_time: float, work: float, work_start_time: float, now: float
) -> tuple[float, float]:
    """BOINC's exponentially-decaying average of credit per day; returns (avg, avg_time)."""
    if avg_time > 0:
        diff = max(0.0, now - avg_time)
        weight = math.exp(-diff * LN2 / HALF_LIFE)
        avg *= weight
        if 1.0 - weight > 1e-6:
            avg += (1.0 - weight) * (work / (diff / 86400.0))
        else:
            avg += LN2 * work * 86400.0 / HALF_LIFE
    elif work:
        # BOINC divides the first work by the time since it was sent; browser tasks take
        # seconds, which would start a RAC at tens of thousands of times its credit. The
        # first period counts as at least a day.
        days = max(now - work_start_time, FIRST_PERIOD) / 86400.0
        avg = work / days
    return avg, now


@dataclass(frozen=True)
class Grant:
    replica_id: int
    workunit_id: int
    project_id: int
    host_id: int | None
    user_id: int | None
    amount: float
    sent_at: datetime | None


LEDGER = """
WITH {rows}
INSERT INTO compute_creditentry
    (replica_id, workunit_id, project_id, host_id, user_id, amount, granted_at, folded)
SELECT v.v_replica, v.v_wu, v.v_project, v.v_host, v.v_user, v.v_amount, %s, false FROM v WHERE true
ON CONFLICT (replica_id) DO NOTHING
RETURNING replica_id
"""

LEDGER_COLUMNS = (
    ("v_replica", "bigint"),
    ("v_wu", "bigint"),
    ("v_project", "bigint"),
    ("v_host", "bigint"),
    ("v_user", "bigint"),
    ("v_amount", "float8"),
)

# Totals are read and locked in a fixed order (hosts, volunteers, memberships; each by id)
# with FOR NO KEY UPDATE, so concurrent validations neither deadlock nor block the
# foreign-key checks of leases; each table is then written with one statement.
TOTALS = {
    "host": (
        "SELECT id, total_credit, rac, rac_time FROM compute_host WHERE id {ids} "
        "ORDER BY id {lock}",
        "UPDATE compute_host SET total_credit = v.v_total, rac = v.v_rac, rac_time = v.v_time "
        "FROM v WHERE id = v.v_key",
    ),
    "volunteer": (
        "SELECT user_id, total_credit, rac, rac_time FROM compute_volunteer "
        "WHERE user_id {ids} ORDER BY user_id {lock}",
        "UPDATE compute_volunteer SET total_credit = v.v_total, rac = v.v_rac, "
        "rac_time = v.v_time FROM v WHERE user_id = v.v_key",
    ),
    "membership": (
        "SELECT id, total_credit, rac, rac_time, user_id, project_id FROM compute_membership "
        "WHERE user_id {ids} ORDER BY id {lock}",
        "UPDATE compute_membership SET total_credit = v.v_total, rac = v.v_rac, "
        "rac_time = v.v_time FROM v WHERE id = v.v_key",
    ),
}

TOTAL_COLUMNS = (
    ("v_key", "bigint"),
    ("v_total", "float8"),
    ("v_rac", "float8"),
    ("v_time", "float8"),
)


def grant(grants: Iterable[Grant], now: datetime) -> list[Grant]:
    """Write ledger entries and add them to host, volunteer and membership totals.

    Returns the grants that took effect; one whose replica was already credited is skipped
    (the unique ledger row refuses it) and changes nothing. Must run inside a transaction.
    """
    from compute.dispatch import dialect

    grants = list(grants)
    if not grants:
        return []
    sql = dialect.current()
    cte, params = sql.rows(
        "v",
        LEDGER_COLUMNS,
        [
            (g.replica_id, g.workunit_id, g.project_id, g.host_id, g.user_id, g.amount)
            for g in grants
        ],
    )
    written = {row[0] for row in sql.execute(sql.format(LEDGER, rows=cte), [*params, now])}
    done = [g for g in grants if g.replica_id in written]
    _add_to_totals(sql, done, now.timestamp())
    if done:
        signals.credit_granted.send(sender=Grant, grants=done, now=now)
    return done


def _add_to_totals(sql, grants: list[Grant], now: float) -> None:
    per_host: dict[int, list[Grant]] = defaultdict(list)
    per_user: dict[int, list[Grant]] = defaultdict(list)
    per_membership: dict[tuple[int, int], list[Grant]] = defaultdict(list)
    for g in grants:
        if g.host_id is not None:
            per_host[g.host_id].append(g)
        if g.user_id is not None:
            per_user[g.user_id].append(g)
            per_membership[(g.user_id, g.project_id)].append(g)
    if per_host:
        _apply(sql, "host", per_host, lambda row: row[0], now)
    if per_user:
        # The first credit of a volunteer, or of a volunteer in a project, creates its row.
        Volunteer.objects.bulk_create(
            [Volunteer(user_id=u) for u in per_user], ignore_conflicts=True
        )
        Membership.objects.bulk_create(
            [Membership(user_id=u, project_id=p) for u, p in per_membership],
            ignore_conflicts=True,
        )
        _apply(sql, "volunteer", per_user, lambda row: row[0], now)
        _apply(sql, "membership", per_membership, lambda row: (row[4], row[5]), now, per_user)


def _apply(sql, table: str, grants_of: dict, key_of, now: float, ids: dict | None = None) -> None:
    read, write = TOTALS[table]
    in_ids, params = sql.ids(sorted(ids or grants_of))
    rows = []
    for row in sql.execute(sql.format(read, ids=in_ids), params):
        grants = grants_of.get(key_of(row))
        if not grants:
            continue
        total, rac, rac_time = row[1], row[2], row[3]
        for g in grants:
            start = g.sent_at.timestamp() if g.sent_at else now
            rac, rac_time = update_average(rac, rac_time, g.amount, start, now)
            total += g.amount
        rows.append((row[0], total, rac, rac_time))
    if rows:
        cte, params = sql.rows("v", TOTAL_COLUMNS, rows)
        sql.execute(sql.format("WITH {rows} " + write, rows=cte), params)


def fold_project_credit(limit: int | None = None, now: float | None = None) -> int:
    """Add new ledger entries to their projects' totals.

    A project's row would be the hottest in the database if every grant updated it, so the
    ledger is folded in periodically instead; ``folded`` marks what has been counted, and
    rows are claimed with SKIP LOCKED so two folds never count one entry twice.
    """
    limit = limit or settings.COMPUTE["SWEEP_BATCH"] * 10
    now = now or time.time()
    with transaction.atomic():
        entries = CreditEntry.objects.filter(folded=False).order_by("id")
        ids = list(
            entries.select_for_update(skip_locked=True, no_key=True).values_list("id", flat=True)[
                :limit
            ]
        )
        if not ids:
            return 0
        sums = (
            CreditEntry.objects.filter(id__in=ids)
            .values("project_id")
            .annotate(amount=Sum("amount"))
            .order_by("project_id")
        )
        for row in sums:
            project = Project.objects.select_for_update(no_key=True).get(id=row["project_id"])
            project.rac, project.rac_time = update_average(
                project.rac, project.rac_time, row["amount"], now, now
            )
            project.total_credit += row["amount"]
            project.save(update_fields=["total_credit", "rac", "rac_time"])
        CreditEntry.objects.filter(id__in=ids).update(folded=True)
        return len(ids)


def decay_credit(now: float | None = None, min_age: float = 86400.0) -> int:
    """Decay the RAC of everything that earned nothing for ``min_age`` seconds (BOINC's
    update_stats), one UPDATE per table."""
    now = now or time.time()
    changed = 0
    for model in (Host, Volunteer, Membership, Project):
        changed += model.objects.filter(
            rac__gt=0, rac_time__gt=0, rac_time__lt=now - min_age
        ).update(rac=F("rac") * Exp((F("rac_time") - now) * (LN2 / HALF_LIFE)), rac_time=now)
    return changed
