"""Results for one work unit arriving at the same moment on PostgreSQL (different
connections, as from different ASGI processes): the one that completes the quorum always
flags the work unit for validation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

import pytest

from compute import results, scheduler, submission
from compute.models import WorkUnit
from tests.support import square

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_simultaneous_results_of_a_quorum_always_flag_validation(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    n = 30
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(n)], name="b")
    first, second = host_factory(project, cores=32), host_factory(project, cores=32)
    leases = {
        host: {a.workunit_id: a for a in scheduler.lease_replicas(host, n)}
        for host in (first, second)
    }
    assert len(leases[first]) == len(leases[second]) == n

    def report(host, lease, barrier):
        try:
            barrier.wait(timeout=10)
            return results.record_result(
                host, lease.replica_id, lease.lease_token, square(lease.input), 1.0
            ).accepted
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for workunit_id in leases[first]:
            barrier = threading.Barrier(2)
            both = [
                pool.submit(report, host, leases[host][workunit_id], barrier)
                for host in (first, second)
            ]
            assert all(f.result(timeout=30) for f in both)

    # Every work unit has its quorum of results, so every one awaits (or has had) validation.
    stuck = WorkUnit.objects.filter(need_validate=False, canonical_replica__isnull=True)
    assert list(stuck.values_list("id", flat=True)) == []
