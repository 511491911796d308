"""Quota arithmetic over batches of verdicts: many results of one host validated at once
(a backlog after an outage) must neither overflow the database's integer nor pass the cap.
On PostgreSQL a quota is a 32-bit integer; the integration level runs this file there."""

from __future__ import annotations

from django.utils import timezone

import pytest

from compute import reliability
from compute.models import HostApp


@pytest.fixture
def record(project_factory, host_factory):
    project = project_factory()
    app = project.apps.get()
    host = host_factory(project)

    def make(quota: int) -> HostApp:
        HostApp.objects.filter(host=host, app=app).delete()
        return HostApp.objects.create(
            host=host, app=app, daily_quota=quota, quota_day=timezone.now().date()
        )

    return make


@pytest.mark.parametrize(
    ("quota", "cap", "valid", "expected"),
    [
        (3, 100, 5, 96),  # doubles five times, under the cap
        (3, 100, 6, 100),  # the sixth doubling would pass it
        (1_000_000, 1_000_000, 20, 1_000_000),  # 1e6 x 2**20 would pass 32 bits
        (1000, 2_000_000, 25, 2_000_000),
        (1_000_000, 1_000_000, 40, 1_000_000),  # 1e6 x 2**40 is never computed
        (1, 2_000_000_000, 31, 2_000_000_000),
        (7, 7, 1, 7),
    ],
)
def test_many_valid_results_at_once_double_the_quota_up_to_the_cap(
    record, quota, cap, valid, expected
):
    r = record(quota)
    reliability.record_valid([(r.host_id, r.app_id)] * valid, {r.app_id: cap})
    r.refresh_from_db()
    assert r.daily_quota == expected
    assert r.consecutive_valid == valid


@pytest.mark.parametrize(("quota", "failures", "expected"), [(100, 3, 12), (100, 40, 1), (1, 1, 1)])
def test_many_failures_at_once_halve_the_quota_down_to_one(record, quota, failures, expected):
    r = record(quota)
    HostApp.objects.filter(id=r.id).update(consecutive_valid=12)
    reliability.record_failure([(r.host_id, r.app_id)] * failures)
    r.refresh_from_db()
    assert (r.daily_quota, r.consecutive_valid) == (expected, 0)
