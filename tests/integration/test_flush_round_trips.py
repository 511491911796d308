"""Round trips and lock holds on PostgreSQL. A flush: the candidates popped for its requests
are read with its first statement, and its COMMIT goes with its last, except where reading
the answers back needs a statement of its own (a refused result, adaptive replication
deciding). A validation: the hosts' reliability records, which leases lock too, are written
last, with the COMMIT."""

from __future__ import annotations

from django.db import connection, connections

import pytest
from psycopg import pq

from compute import feeder, scheduler, submission, validation
from compute.dispatch import dialect, flush
from compute.dispatch.ops import HostRef, Lease, Receipt, Refusal, result_report
from compute.models import HostApp, Replica, WorkUnit
from compute.states import Replication, ServerState
from tests.support import square

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Pipelines:
    """Records each pipeline a flush sends: its statements, whether it carried the COMMIT,
    and the transaction's state right after it."""

    def __init__(self, monkeypatch) -> None:
        self.sent: list[tuple[list[str], bool, pq.TransactionStatus]] = []
        real = dialect.Postgres.execute_all

        def execute_all(sql, statements, *, commit=False):
            rows = real(sql, statements, commit=commit)
            status = connection.connection.info.transaction_status
            self.sent.append(([s for s, _ in statements], commit, status))
            return rows

        monkeypatch.setattr(dialect.Postgres, "execute_all", execute_all)

    def last(self) -> tuple[list[str], bool, pq.TransactionStatus]:
        return self.sent[-1]


def result_of(host, a, project_ids):
    return result_report(
        HostRef.of(host, project_ids), a.replica_id, a.lease_token, square(a.input), 1.0
    )


@pytest.fixture
def project(project_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(12)], name="b")
    feeder.refill(project.apps.get().id)
    return project


def test_a_result_and_its_request_commit_with_the_last_pipeline(project, host_factory, monkeypatch):
    host = host_factory(project, user=None, cores=1)
    (held,) = scheduler.lease_replicas(host, 1, project_ids=[project.id])
    pipelines = Pipelines(monkeypatch)
    seen_by_another: list[str] = []

    def committed(answers):
        # Another connection sees the result the moment the flush says it committed.
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    "SELECT server_state FROM compute_replica WHERE id = %s", [held.replica_id]
                )
                seen_by_another.append(cursor.fetchone()[0])
        finally:
            other.close()

    receipt, leased = flush.apply(
        [result_of(host, held, [project.id]), Lease(HostRef.of(host, [project.id]), 1)],
        committed=committed,
    )

    assert receipt.accepted
    assert len(leased) == 1
    # Two pipelines in all: the result with the standing and the candidates popped ahead,
    # then the lease, the counts and the COMMIT.
    assert len(pipelines.sent) == 2
    first, _, _ = pipelines.sent[0]
    assert any("compute_replica r JOIN compute_workunit w" in s for s in first)
    _, commit, status = pipelines.last()
    assert commit
    assert status == pq.TransactionStatus.IDLE
    assert seen_by_another == [ServerState.OVER]
    replica = Replica.objects.get(id=leased[0].replica_id)
    assert replica.server_state == ServerState.IN_PROGRESS
    assert replica.host_id == host.id


def test_a_refused_result_keeps_the_commit_apart_and_says_why(project, host_factory, monkeypatch):
    host = host_factory(project, user=None, cores=1)
    a, b = scheduler.lease_replicas(host, 2, project_ids=[project.id])
    forged = result_report(
        HostRef.of(host, [project.id]), a.replica_id, "0" * 32, square(a.input), 1.0
    )
    pipelines = Pipelines(monkeypatch)

    refused, accepted = flush.apply([forged, result_of(host, b, [project.id])])

    assert isinstance(refused, Receipt)
    assert not refused.accepted
    assert refused.refusal == Refusal.BAD_LEASE
    assert accepted.accepted
    # The refused lease was looked up after the last pipeline: that one did not commit.
    assert not any(commit for _, commit, _ in pipelines.sent)
    assert Replica.objects.get(id=b.replica_id).server_state == ServerState.OVER
    assert Replica.objects.get(id=a.replica_id).server_state == ServerState.IN_PROGRESS


def test_adaptive_replication_decides_after_the_lease_before_the_commit(
    project_factory, host_factory, monkeypatch
):
    project = project_factory(
        min_quorum=2,
        target_nresults=2,
        app_kwargs={"adaptive_replication": True, "spot_check_rate": 0.0},
    )
    app = project.apps.get()
    submission.create_batch(project, app, [{"x": i} for i in range(4)], name="adaptive")
    assert WorkUnit.objects.filter(replication=Replication.ADAPTIVE_PENDING).exists()
    feeder.refill(app.id)
    host = host_factory(project, user=None, cores=1)
    pipelines = Pipelines(monkeypatch)

    (leased,) = flush.apply([Lease(HostRef.of(host, [project.id]), 1)])

    assert len(leased) == 1
    assert not any(commit for _, commit, _ in pipelines.sent)
    # The decision was written in the flush's transaction: the work unit is no longer pending.
    wu = WorkUnit.objects.get(id=leased[0].workunit_id)
    assert wu.replication != Replication.ADAPTIVE_PENDING


def test_a_host_with_less_room_than_it_asks_for_takes_its_room_and_the_rest_goes_back(
    project, host_factory, settings
):
    settings.COMPUTE = {**settings.COMPUTE, "PREFETCH_PER_CORE": 2}
    app = project.apps.get()
    host = host_factory(project, user=None, cores=1)
    scheduler.lease_replicas(host, 1, project_ids=[project.id])
    queue = feeder.get_queue()
    before = queue.size(app.id)

    (leased,) = flush.apply([Lease(HostRef.of(host, [project.id]), 6)])

    # Six were popped ahead of the standing (plus the overfetch); the host had room for one.
    assert len(leased) == 1
    assert queue.size(app.id) == before - 1


def test_a_validation_writes_the_reliability_records_last_with_its_commit(
    project, host_factory, monkeypatch
):
    first, second = (host_factory(project, user=None, cores=8) for _ in range(2))
    a = scheduler.lease_replicas(first, 1, project_ids=[project.id])[0]
    b = next(
        x
        for x in scheduler.lease_replicas(second, 12, project_ids=[project.id])
        if x.workunit_id == a.workunit_id
    )
    receipts = flush.apply([result_of(first, a, [project.id]), result_of(second, b, [project.id])])
    assert all(r.accepted for r in receipts)
    before = {q.host_id: q.consecutive_valid for q in HostApp.objects.all()}
    pipelines = Pipelines(monkeypatch)

    (verdict,) = validation.validate_workunits([a.workunit_id])

    assert verdict.outcome == "valid"
    statements, commit, status = pipelines.last()
    assert commit
    assert status == pq.TransactionStatus.IDLE
    assert "compute_hostapp" in statements[-1]
    assert not any("compute_hostapp" in s for s in statements[:-1])
    after = {q.host_id: q.consecutive_valid for q in HostApp.objects.all()}
    assert after[first.id] == before[first.id] + 1
    assert after[second.id] == before[second.id] + 1
