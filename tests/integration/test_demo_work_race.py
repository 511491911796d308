"""Two runs of the demo's replenisher at once (two beat deliveries, or a redelivered task),
on PostgreSQL: each project gets one new batch, not one from each run."""

from __future__ import annotations

import threading
import time

from django.db import connection, transaction

import pytest

from compute import demo_work
from compute.demo import install_demo
from compute.models import Batch

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_two_runs_at_once_submit_one_batch_per_project(settings, user_factory):
    # The seeded batches of ABC and Mandelbrot (40 and 60 replicas) are below the mark, and
    # with one more batch above it; the key search's (80) is above it already.
    settings.DEMO_WORK = {"ENABLED": True, "LOW_WATER": 61, "KEEP_BATCHES": 3}
    install_demo(user_factory(is_superuser=True))
    seeded = set(Batch.objects.values_list("id", flat=True))
    second: dict[str, int] = {}

    def run_second() -> None:
        try:
            second.update(demo_work.replenish_demo_work())
        finally:
            connection.close()

    thread = threading.Thread(target=run_second)
    with transaction.atomic():
        first = demo_work.replenish_demo_work()
        # The second run starts while the first has submitted and not yet committed.
        thread.start()
        deadline = time.monotonic() + 30
        while thread.is_alive() and not waiting_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert thread.is_alive(), f"the second run did not wait for the first: {second}"
    thread.join(60)

    low = ["abc-at-home", "mandelbrot"]
    assert sorted(first) == low
    assert second == {}
    new = Batch.objects.exclude(id__in=seeded)
    assert sorted(new.values_list("project__slug", flat=True)) == low
