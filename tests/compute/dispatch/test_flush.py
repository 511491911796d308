"""One flush: many sockets' ops in one transaction, answered in their order."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from compute import feeder, scheduler, submission
from compute.dispatch import flush
from compute.dispatch.ops import (
    FAILED,
    HostRef,
    Lease,
    Receipt,
    Refusal,
    ReportError,
    ReportProgress,
    Touch,
    result_report,
)
from compute.models import Host, Replica, WorkUnit
from compute.states import Outcome, ServerState
from tests.support import square

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(project_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(10)], name="b")
    return project


def result_of(host, a, output=None):
    return result_report(
        HostRef.of(host), a.replica_id, a.lease_token, output or square(a.input), 1.0
    )


def test_answers_come_back_in_the_order_of_the_ops(project, host_factory):
    host = host_factory(project, cores=2)
    first, second, third = scheduler.lease_replicas(host, 3)
    ops = [
        ReportProgress(HostRef.of(host), first.replica_id, first.lease_token, 0.5),
        Lease(HostRef.of(host), 1),
        result_of(host, second),
        Touch((host.id,)),
        ReportError(HostRef.of(host), third.replica_id, third.lease_token, "kernel failed"),
    ]
    progress, leased, result, touched, error = flush.apply(ops)
    assert isinstance(progress, Receipt)
    assert progress.accepted
    assert progress.deadline
    assert isinstance(leased, list)
    assert result.accepted
    assert result.workunit_id == second.workunit_id
    assert touched is None
    assert error.accepted
    assert Host.objects.get(id=host.id).last_seen is not None


def test_a_result_and_its_request_see_each_other(project, host_factory, settings):
    """The request rides with the result: the replica just returned no longer counts
    against the host's prefetch limit."""
    settings.COMPUTE = {**settings.COMPUTE, "PREFETCH_PER_CORE": 1}
    host = host_factory(project, cores=1)
    (held,) = scheduler.lease_replicas(host, 1)
    assert scheduler.lease_replicas(host, 1) == []

    receipt, leased = flush.apply([result_of(host, held), Lease(HostRef.of(host), 1)])

    assert receipt.accepted
    assert len(leased) == 1
    assert leased[0].workunit_id != held.workunit_id


def test_a_result_sent_twice_in_one_flush_counts_once(project, host_factory):
    host = host_factory(project, cores=1)
    (a,) = scheduler.lease_replicas(host, 1)
    once, twice = flush.apply([result_of(host, a), result_of(host, a, {"y": -1})])
    assert once.accepted
    assert twice.refusal == Refusal.NOT_IN_PROGRESS
    assert Replica.objects.get(id=a.replica_id).output == square(a.input)


def test_refused_results_are_told_why_and_change_nothing(project, host_factory):
    host, other = host_factory(project, cores=2), host_factory(project, cores=2)
    mine, theirs = scheduler.lease_replicas(host, 1)[0], scheduler.lease_replicas(other, 1)[0]
    bad_token = result_report(HostRef.of(host), mine.replica_id, "0" * 32, {"y": 1}, 1.0)
    not_mine = result_report(HostRef.of(host), theirs.replica_id, theirs.lease_token, {}, 1.0)
    unknown = result_report(HostRef.of(host), 10**12, mine.lease_token, {}, 1.0)
    good = result_of(other, theirs)

    answers = flush.apply([bad_token, not_mine, unknown, good])

    assert [a.refusal for a in answers[:3]] == [
        Refusal.BAD_LEASE,
        Refusal.NOT_YOURS,
        Refusal.UNKNOWN_REPLICA,
    ]
    assert answers[3].accepted
    assert Replica.objects.get(id=mine.replica_id).server_state == ServerState.IN_PROGRESS


def test_two_results_completing_a_quorum_in_one_flush_flag_it(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="one")
    first, second = host_factory(project, cores=1), host_factory(project, cores=1)
    (a,) = scheduler.lease_replicas(first, 1)
    (b,) = scheduler.lease_replicas(second, 1)
    assert a.workunit_id == b.workunit_id
    one, two = flush.apply([result_of(first, a), result_of(second, b)])
    assert one.accepted
    assert two.accepted
    # Their flush completed the quorum: both say so.
    assert one.validation_queued
    assert two.validation_queued
    # Flagged, or already validated where Celery runs in-process.
    wu = WorkUnit.objects.get(id=a.workunit_id)
    assert wu.need_validate or wu.canonical_replica_id in (a.replica_id, b.replica_id)


class DownCache(feeder.LocalReadyQueue):
    def pop(self, app_id, count):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")


def test_a_cache_outage_fails_the_requests_of_a_flush_but_not_its_results(
    project, host_factory, monkeypatch
):
    host = host_factory(project, cores=2)
    (a,) = scheduler.lease_replicas(host, 1)
    monkeypatch.setattr(feeder, "get_queue", DownCache)

    receipt, leased = flush.apply([result_of(host, a), Lease(HostRef.of(host), 1)])

    assert receipt.accepted
    assert leased is FAILED
    assert Replica.objects.get(id=a.replica_id).outcome == Outcome.SUCCESS


def test_requests_of_many_hosts_share_one_flush_without_sharing_work_units(project, host_factory):
    hosts = [host_factory(project, cores=4) for _ in range(5)]
    answers = flush.apply([Lease(HostRef.of(h), 4) for h in hosts])
    # Ten work units, two replicas each: twenty replicas for five hosts of four cores.
    assert sum(len(a) for a in answers) == 20
    for host, assignments in zip(hosts, answers, strict=True):
        assert len({a.workunit_id for a in assignments}) == len(assignments)
        tokens = {a.lease_token for a in assignments}
        assert len(tokens) == 1
        held = Replica.objects.filter(host=host, server_state=ServerState.IN_PROGRESS)
        assert sorted(held.values_list("id", flat=True)) == sorted(
            a.replica_id for a in assignments
        )


def test_a_refill_in_the_middle_of_a_flush_never_hands_one_replica_to_two_hosts(
    project_factory, host_factory
):
    """The cache holds one entry; popping runs it dry, the refill pushes every unsent replica
    again (the one just popped among them), and the next pop returns that one once more."""
    project = project_factory(min_quorum=1, target_nresults=1)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(3)], name="b")
    app_id = project.apps.get().id
    feeder.refill(app_id, limit=1)
    feeder.get_queue().set_cursor(app_id, 0)  # the feeder's pass has come round again
    first, second = host_factory(project, cores=2), host_factory(project, cores=2)

    answers = flush.apply([Lease(HostRef.of(first), 2), Lease(HostRef.of(second), 2)])

    handed = [
        (a.replica_id, host)
        for host, got in zip((first, second), answers, strict=False)
        for a in got
    ]
    assert len({replica for replica, _ in handed}) == len(handed) == 3
    for replica_id, host in handed:
        assert Replica.objects.get(id=replica_id).host_id == host.id


def test_requests_pop_ahead_what_anonymous_hosts_ask_for_within_their_limit(
    project, host_factory, settings
):
    """Before the hosts' standing is read, a flush pops what its anonymous hosts ask for
    (capped by their prefetch limit) on the first app of each project they name; a signed-in
    host's projects are its memberships, read with the flush's first statement, so it pops
    later."""
    from compute.dispatch import leasing

    settings.COMPUTE = {**settings.COMPUTE, "PREFETCH_PER_CORE": 2}
    app = project.apps.get()
    anonymous = host_factory(project, user=None, cores=1)
    signed_in = host_factory(project, cores=1)

    assert leasing.ahead([Lease(HostRef.of(anonymous, [project.id]), 5)]) == {app.id: 2}
    assert leasing.ahead([Lease(HostRef.of(anonymous, [project.id]), 1)] * 2) == {app.id: 2}
    assert leasing.ahead([Lease(HostRef.of(anonymous, [project.id]), 0)]) == {}
    assert leasing.ahead([Lease(HostRef.of(signed_in), 3)]) == {}
