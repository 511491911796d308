"""The writer: ops of one turn of the event loop share a flush, answers come back in order,
and an op the flush cannot carry out costs only its own answer."""

from __future__ import annotations

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async

from compute import scheduler, submission
from compute.dispatch import reports, writer
from compute.dispatch.ops import FAILED, HostRef, Lease, ReportError, Touch, result_report
from compute.models import Host, Replica
from compute.states import Outcome
from tests.support import square

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def leased(project_factory, host_factory, n=4):
    project = project_factory(min_quorum=1, target_nresults=1)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(8)], name="b")
    host = host_factory(project, cores=8)
    return host, scheduler.lease_replicas(host, n)


async def test_ops_of_one_turn_share_a_flush_and_are_answered_in_order(
    project_factory, host_factory
):
    host, held = await sync_to_async(leased)(project_factory, host_factory)
    ref = HostRef.of(host)
    out = writer.get()
    before = out.flushes
    results = [
        out.submit(result_report(ref, a.replica_id, a.lease_token, square(a.input), 1.0))
        for a in held
    ]
    request = out.submit(Lease(ref, 2))
    touched = out.submit(Touch((host.id,)))

    receipts = await asyncio.gather(*results)
    assignments = await request
    assert await touched is None

    assert out.flushes == before + 1
    assert [r.workunit_id for r in receipts] == [a.workunit_id for a in held]
    assert all(r.accepted for r in receipts)
    assert len(assignments) == 2
    assert await sync_to_async(lambda: Host.objects.get(id=host.id).last_seen)() is not None


async def test_an_op_that_fails_costs_only_its_own_answer(
    project_factory, host_factory, monkeypatch, caplog
):
    host, held = await sync_to_async(leased)(project_factory, host_factory)
    ref = HostRef.of(host)
    real = reports.record_errors

    def record_errors(sql, ops, now):
        if any(op.reason == "poison" for op in ops):
            raise ValueError("a statement this op breaks")
        return real(sql, ops, now)

    monkeypatch.setattr(reports, "record_errors", record_errors)
    from compute.dispatch import flush

    monkeypatch.setattr(
        flush,
        "REPORTS",
        tuple((k, record_errors if k is ReportError else f) for k, f in flush.REPORTS),
    )
    out = writer.get()
    first, second, third, fourth = held
    answers = await asyncio.gather(
        out.submit(result_report(ref, first.replica_id, first.lease_token, {"y": 0}, 1.0)),
        out.submit(ReportError(ref, second.replica_id, second.lease_token, "poison")),
        out.submit(ReportError(ref, third.replica_id, third.lease_token, "kernel failed")),
        out.submit(result_report(ref, fourth.replica_id, fourth.lease_token, {"y": 9}, 1.0)),
    )

    assert answers[1] is FAILED
    assert [answers[i].accepted for i in (0, 2, 3)] == [True, True, True]
    outcomes = await sync_to_async(
        lambda: dict(Replica.objects.filter(host=host).values_list("id", "outcome"))
    )()
    assert outcomes[second.replica_id] == Outcome.INIT
    assert outcomes[third.replica_id] == Outcome.CLIENT_ERROR
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "ReportError" in errors[0].getMessage()


async def test_last_seen_times_are_gathered_into_one_op(project_factory, host_factory, monkeypatch):
    monkeypatch.setattr(writer, "TOUCH_SECONDS", 0.05)
    host, _ = await sync_to_async(leased)(project_factory, host_factory)
    other = await sync_to_async(host_factory)()
    out = writer.get()
    before = out.ops
    out.touch(host.id)
    out.touch(other.id)
    out.touch(host.id)
    await asyncio.sleep(0.1)
    await out.settled()

    assert out.ops == before + 1
    seen = await sync_to_async(
        lambda: list(Host.objects.filter(id__in=[host.id, other.id]).values_list("last_seen"))
    )()
    assert all(when is not None for (when,) in seen)
