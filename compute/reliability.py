"""How far the server trusts a host with an app: BOINC's host_app_version bookkeeping.

- ``consecutive_valid`` counts valid results in a row; an error, a timeout or an invalid
  result resets it. Adaptive replication trusts a host with at least ``TRUST_THRESHOLD`` of
  them, with probability 1 - 1/consecutive_valid.
- ``daily_quota`` is BOINC's max_jobs_per_day (per core): halved on each error, timeout or
  invalid result (down to 1), doubled on each valid result (up to the project's default).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date

from django.db.models import Case, F, Value, When
from django.db.models.functions import Greatest

from compute.models import HostApp

TRUST_THRESHOLD = 10


def is_trusted(consecutive_valid: int, rng: random.Random | None = None) -> bool:
    if consecutive_valid < TRUST_THRESHOLD:
        return False
    return (rng or random).random() < 1.0 - 1.0 / consecutive_valid


def ensure_records(host_id: int, app_quota: dict[int, int], today: date) -> dict[int, HostApp]:
    """The host's records for these apps, created with the project's quota when missing."""
    records = {r.app_id: r for r in HostApp.objects.filter(host_id=host_id, app_id__in=app_quota)}
    missing = [a for a in app_quota if a not in records]
    if missing:
        HostApp.objects.bulk_create(
            [
                HostApp(host_id=host_id, app_id=a, daily_quota=app_quota[a], quota_day=today)
                for a in missing
            ],
            ignore_conflicts=True,
        )
        records.update(
            {r.app_id: r for r in HostApp.objects.filter(host_id=host_id, app_id__in=missing)}
        )
    return records


def jobs_left_today(record: HostApp, cores: int, today: date) -> int:
    used = record.jobs_today if record.quota_day == today else 0
    return max(0, record.daily_quota * max(1, cores) - used)


def count_jobs(host_id: int, app_id: int, n: int, today: date) -> None:
    HostApp.objects.filter(host_id=host_id, app_id=app_id).update(
        jobs_today=Case(When(quota_day=today, then=F("jobs_today") + n), default=Value(n)),
        quota_day=today,
    )


def _by_app_and_count(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
    """(app, how many times) -> hosts, so a batch of verdicts is a few statements."""
    grouped: dict[tuple[int, int], list[int]] = defaultdict(list)
    for (host_id, app_id), n in Counter(pairs).items():
        grouped[(app_id, n)].append(host_id)
    return grouped


def record_valid(pairs: Iterable[tuple[int, int]], quota_cap: dict[int, int]) -> None:
    """Valid results for (host, app) pairs: one more in a row, quota doubles (per result)
    up to the cap. A batch may hold many results of one host (a backlog validated after an
    outage), so the doubling is never computed past the cap: a quota at or above
    cap / 2**n goes straight to the cap, a smaller one doubles n times and stays under it."""
    for (app_id, n), host_ids in _by_app_and_count(pairs).items():
        cap = quota_cap[app_id]
        reaches_cap = -(-cap // 2**n)  # ceil(cap / 2**n), at least 1
        HostApp.objects.filter(host_id__in=host_ids, app_id=app_id).update(
            consecutive_valid=F("consecutive_valid") + n,
            daily_quota=Case(
                When(daily_quota__gte=reaches_cap, then=Value(cap)),
                default=F("daily_quota") * 2**n,
            ),
        )


def record_failure(pairs: Iterable[tuple[int, int]]) -> None:
    """Errors, timeouts and invalid results: the streak ends and the quota halves (per
    failure, at least 1)."""
    for (app_id, n), host_ids in _by_app_and_count(pairs).items():
        HostApp.objects.filter(host_id__in=host_ids, app_id=app_id).update(
            # A quota fits in 31 bits: halving it 31 times or more leaves the floor.
            consecutive_valid=0,
            daily_quota=Greatest(F("daily_quota") / 2 ** min(n, 31), Value(1)),
        )
