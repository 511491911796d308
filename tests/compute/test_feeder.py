from __future__ import annotations

import pytest

from compute import feeder, submission
from compute.feeder import Entry, LocalReadyQueue, score
from compute.models import Replica
from compute.states import ServerState


def test_entries_come_out_by_priority_then_work_unit():
    q = LocalReadyQueue()
    q.push(
        1,
        [Entry(score(0, 5, 0), 50, 5), Entry(score(3, 9, 0), 90, 9), Entry(score(0, 2, 0), 20, 2)],
    )
    assert [e.replica_id for e in q.pop(1, 3)] == [90, 20, 50]


def test_the_second_replica_of_a_work_unit_comes_a_spread_later():
    entries = [Entry(score(0, wu, k), wu * 10 + k, wu) for wu in range(1, 200) for k in (0, 1)]
    q = LocalReadyQueue()
    q.push(1, entries)
    first = q.pop(1, feeder.SPREAD)
    assert len({e.workunit_id for e in first}) == feeder.SPREAD


def test_pushing_an_entry_twice_queues_it_once():
    q = LocalReadyQueue()
    e = Entry(1.0, 1, 1)
    q.push(7, [e, e])
    q.push(7, [e])
    assert q.size(7) == 1


def test_refill_loads_unsent_replicas_and_rewinds_at_the_end(project_factory):
    project = project_factory(min_quorum=1, target_nresults=1)
    app = project.apps.get()
    submission.create_batch(project, app, [{"x": i} for i in range(5)], name="b")
    q = LocalReadyQueue()
    assert feeder.refill(app.id, limit=3, queue=q) == 3
    assert q.get_cursor(app.id) > 0
    assert feeder.refill(app.id, limit=3, queue=q) == 2
    assert q.get_cursor(app.id) == 0
    assert q.size(app.id) == 5


def test_refill_skips_replicas_that_are_not_unsent(project_factory):
    project = project_factory(min_quorum=1, target_nresults=1)
    app = project.apps.get()
    submission.create_batch(project, app, [{"x": i} for i in range(3)], name="b")
    Replica.objects.filter(id=Replica.objects.first().id).update(server_state=ServerState.OVER)
    q = LocalReadyQueue()
    assert feeder.refill(app.id, queue=q) == 2


@pytest.mark.integration
def test_the_redis_queue_behaves_like_the_local_one(redis_url):
    q = feeder.RedisReadyQueue(redis_url, prefix="sg:test-ready")
    q.clear()
    q.push(
        1,
        [Entry(score(0, 5, 0), 50, 5), Entry(score(3, 9, 0), 90, 9), Entry(score(0, 5, 0), 50, 5)],
    )
    assert q.size(1) == 2
    assert [e.replica_id for e in q.pop(1, 5)] == [90, 50]
    q.set_cursor(1, 42)
    assert q.get_cursor(1) == 42
    q.clear()
    assert q.get_cursor(1) == 0
