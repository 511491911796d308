"""The writer on PostgreSQL: no answer before commit, and a flush whose connection dies
mid-way answers ``server_error`` for exactly the ops it held, stores none of them, and
leaves the flushes before and after it alone."""

from __future__ import annotations

import asyncio
import threading
import time

from django.db import connection, connections

import pytest
from asgiref.sync import sync_to_async

from compute import scheduler, submission
from compute.dispatch import writer
from compute.dispatch.ops import FAILED, HostRef, result_report
from compute.models import Replica
from compute.states import Outcome, ServerState
from tests.support import square

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]


def setup(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(4)], name="b")
    host = host_factory(project, cores=8)
    leased = sorted(scheduler.lease_replicas(host, 4), key=lambda a: a.workunit_id)
    ref = HostRef.of(host)
    ops = [result_report(ref, a.replica_id, a.lease_token, square(a.input), 1.0) for a in leased]
    return leased, ops


class RowLock:
    """Holds a work unit's row lock from another connection until released."""

    def __init__(self, workunit_id: int) -> None:
        self.held, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(workunit_id,))
        self.thread.start()
        assert self.held.wait(10)

    def _hold(self, workunit_id: int) -> None:
        db = connections.create_connection("default")
        try:
            db.set_autocommit(False)
            with db.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM compute_workunit WHERE id = %s FOR UPDATE", [workunit_id]
                )
                self.held.set()
                self.release.wait(30)
            db.rollback()
        finally:
            db.close()

    def stop(self) -> None:
        self.release.set()
        self.thread.join(10)


def _waiting_backend() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


async def test_a_flush_that_loses_its_connection_fails_only_its_own_ops(
    project_factory, host_factory
):
    leased, ops = await sync_to_async(setup)(project_factory, host_factory)
    out = writer.get()

    # A flush before: committed and acknowledged.
    assert (await out.submit(ops[0])).accepted

    # The next flush blocks on a row lock held elsewhere: its ops are not answered.
    lock = await sync_to_async(RowLock, thread_sensitive=False)(leased[1].workunit_id)
    held = [out.submit(ops[1]), out.submit(ops[2])]
    pid = None
    for _ in range(100):
        pid = await sync_to_async(_waiting_backend)()
        if pid:
            break
        await asyncio.sleep(0.05)
    assert pid, "the flush never waited on the lock"
    await asyncio.sleep(0.2)
    assert not any(f.done() for f in held), "answered before its transaction committed"
    # Meanwhile another op queues for the flush after.
    after = out.submit(ops[3])

    await sync_to_async(_terminate)(pid)
    answers = await asyncio.wait_for(asyncio.gather(*held), 10)
    await sync_to_async(lock.stop, thread_sensitive=False)()

    assert answers == [FAILED, FAILED]
    assert (await asyncio.wait_for(after, 10)).accepted

    def states():
        return dict(
            Replica.objects.filter(id__in=[a.replica_id for a in leased]).values_list(
                "id", "outcome"
            )
        )

    outcome = await sync_to_async(states)()
    assert outcome[leased[0].replica_id] == Outcome.SUCCESS
    assert outcome[leased[3].replica_id] == Outcome.SUCCESS
    # Nothing of the failed flush was stored; its results can be sent again.
    assert outcome[leased[1].replica_id] == Outcome.INIT
    assert outcome[leased[2].replica_id] == Outcome.INIT
    again = await asyncio.gather(out.submit(ops[1]), out.submit(ops[2]))
    assert all(r.accepted for r in again)
    held_now = await sync_to_async(
        lambda: Replica.objects.filter(server_state=ServerState.IN_PROGRESS).count()
    )()
    assert held_now == 0


async def test_flushes_gather_the_ops_of_one_turn_of_the_loop(project_factory, host_factory):
    _, ops = await sync_to_async(setup)(project_factory, host_factory)
    out = writer.get()
    before = out.flushes
    started = time.monotonic()
    receipts = await asyncio.gather(*(out.submit(op) for op in ops))
    assert time.monotonic() - started < 5
    assert all(r.accepted for r in receipts)
    assert out.flushes == before + 1
