"""The dispatch path's races on PostgreSQL, each ending with one outcome and at most one
credit per replica: two results of one work unit in one flush and in two processes, a
result against its lease timing out, and a result against its batch being cancelled."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

import pytest

from compute import scheduler, submission, transitioner, validation
from compute.dispatch import flush
from compute.dispatch.ops import HostRef, Receipt, result_report
from compute.models import CreditEntry, Replica, WorkUnit
from compute.states import Outcome, ServerState, ValidateState
from tests.support import square

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def result_op(host, assignment):
    return result_report(
        HostRef.of(host),
        assignment.replica_id,
        assignment.lease_token,
        square(assignment.input),
        1.0,
    )


def leased_pairs(project, hosts, n):
    """Each host leases one replica of each of ``n`` work units; returns {wu: {host: a}}."""
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(n)], name="b")
    pairs: dict[int, dict] = {}
    for host in hosts:
        for a in scheduler.lease_replicas(host, n):
            pairs.setdefault(a.workunit_id, {})[host] = a
    assert all(len(p) == len(hosts) for p in pairs.values())
    return pairs


def in_parallel(*calls):
    """Run the calls on their own connections, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=10)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(run, c) for c in calls]]


def assert_credited_once():
    valid = set(
        Replica.objects.filter(validate_state=ValidateState.VALID).values_list("id", flat=True)
    )
    ledger = list(CreditEntry.objects.values_list("replica_id", flat=True))
    assert len(ledger) == len(set(ledger))
    assert set(ledger) == valid


def test_two_results_of_one_work_unit_in_one_flush_reach_the_quorum(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    first, second = host_factory(project, cores=8), host_factory(project, cores=8)
    pairs = leased_pairs(project, [first, second], 5)
    ops = [result_op(h, a) for p in pairs.values() for h, a in p.items()]

    receipts = flush.apply(ops)

    assert all(isinstance(r, Receipt) and r.accepted for r in receipts)
    # Exactly one of each pair saw the work unit reach its quorum.
    # Each pair completed its quorum in this flush.
    assert all(r.validation_queued for r in receipts)
    # Flagged (or already validated, if a worker of another test took the drain).
    flagged = WorkUnit.objects.filter(need_validate=True) | WorkUnit.objects.filter(
        canonical_replica__isnull=False
    )
    assert set(flagged.values_list("id", flat=True)) == set(pairs)
    validation.validate_pending()
    assert WorkUnit.objects.filter(canonical_replica__isnull=False).count() == len(pairs)
    assert_credited_once()


def test_two_processes_flushing_results_of_the_same_work_units_flag_every_quorum(
    project_factory, host_factory
):
    project = project_factory(min_quorum=2, target_nresults=2)
    first, second = host_factory(project, cores=64), host_factory(project, cores=64)
    pairs = leased_pairs(project, [first, second], 40)
    per_host = {h: [result_op(h, p[h]) for p in pairs.values()] for h in (first, second)}

    answers = in_parallel(*(lambda ops=ops: flush.apply(ops) for ops in per_host.values()))

    assert all(r.accepted for receipts in answers for r in receipts)
    stuck = WorkUnit.objects.filter(need_validate=False, canonical_replica__isnull=True)
    assert list(stuck.values_list("id", flat=True)) == []
    validation.validate_pending()
    assert WorkUnit.objects.filter(canonical_replica__isnull=False).count() == len(pairs)
    assert_credited_once()


def test_a_result_racing_its_lease_timing_out_ends_one_way_only(project_factory, host_factory):
    project = project_factory(min_quorum=1, target_nresults=1, delay_bound=60)
    host = host_factory(project, cores=64)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(30)], name="b")
    leased = scheduler.lease_replicas(host, 30)
    deadline = timezone.now() + timedelta(seconds=30)
    Replica.objects.filter(id__in=[a.replica_id for a in leased]).update(deadline=deadline)
    ops = [result_op(host, a) for a in leased]
    # The result arrives just before the deadline, the transitioner looks just after it.
    before, after = deadline - timedelta(milliseconds=1), deadline + timedelta(milliseconds=1)

    receipts, _ = in_parallel(
        lambda: flush.apply(ops, now=before),
        lambda: transitioner.time_out_replicas(now=after),
    )

    outcomes = dict(Replica.objects.filter(host=host).values_list("id", "outcome"))
    for a, receipt in zip(leased, receipts, strict=True):
        # Whichever committed first decided; the other changed nothing.
        expected = Outcome.SUCCESS if receipt.accepted else Outcome.NO_REPLY
        assert outcomes[a.replica_id] == expected
    assert set(outcomes.values()) <= {Outcome.SUCCESS, Outcome.NO_REPLY}
    validation.validate_pending()
    assert_credited_once()
    assert CreditEntry.objects.count() == sum(r.accepted for r in receipts)


def test_a_result_racing_its_batch_being_cancelled_ends_one_way_only(project_factory, host_factory):
    project = project_factory(min_quorum=1, target_nresults=1)
    host = host_factory(project, cores=64)
    batch = submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(30)], name="b"
    )
    leased = scheduler.lease_replicas(host, 30)
    ops = [result_op(host, a) for a in leased]

    receipts, _ = in_parallel(lambda: flush.apply(ops), lambda: submission.cancel_batch(batch))

    validation.validate_pending()
    rows = {r.id: r for r in Replica.objects.filter(host=host)}
    for a, receipt in zip(leased, receipts, strict=True):
        replica = rows[a.replica_id]
        assert replica.server_state == ServerState.OVER
        if receipt.accepted:
            assert replica.outcome == Outcome.SUCCESS
        else:
            # Cancelled first: the replica was aborted and the result refused.
            assert replica.outcome == Outcome.DIDNT_NEED
            assert receipt.refusal == "not_in_progress"
    # A cancelled work unit credits nothing; one whose result came first may have been
    # validated before the cancel reached it.
    assert_credited_once()
    assert not CreditEntry.objects.filter(
        workunit_id__in=WorkUnit.objects.filter(error_mask__gt=0).values("id")
    ).exists()


def test_an_app_saved_while_another_thread_loads_the_catalog_is_seen_once_committed(
    project_factory,
):
    """The catalog is invalidated when an app is saved, before its transaction commits: a
    thread loading it in between reads the database without the new app. The commit
    invalidates it again, so the first request after it finds the app's work."""
    from compute.catalog import catalog

    project = project_factory()
    with transaction.atomic():
        app = project.apps.create(name="late")
        loaded = in_parallel(lambda: set(catalog.apps()))[0]
        assert app.id not in loaded  # not committed yet: the load cannot see it
    assert catalog.get(app.id) is not None
