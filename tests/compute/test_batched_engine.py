"""Validation and assimilation of many work units at once, and the drain tasks that run them."""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache

import pytest

from compute import assimilation, drains, submission, validation
from compute.models import AssimilatedOutput, CreditEntry, Host, Replica, WorkUnit
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.states import AssimilateState, ValidateState
from tests.support import square


def _batch(project, n):
    project.min_quorum = project.target_nresults = 2
    project.save()
    return submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(n)], name="many"
    )


def _report_all(project, host, answer, n):
    """The host leases one replica of each of n work units and returns answer(input)."""
    leased = lease_replicas(host, n)
    assert len(leased) == n
    for a in leased:
        Replica.objects.filter(id=a.replica_id).update(sent_at=a.deadline - timedelta(days=1))
        assert record_result(host, a.replica_id, a.lease_token, answer(a.input), 10.0).accepted


def test_one_pass_gives_each_work_unit_its_own_verdict(project_factory, host_factory):
    project = project_factory()
    _batch(project, 6)
    honest, other = host_factory(project), host_factory(project)
    _report_all(project, honest, square, 6)
    # The second host agrees on even inputs and disagrees on odd ones.
    _report_all(project, other, lambda i: square(i) if i["x"] % 2 == 0 else {"y": -1}, 6)

    verdicts = {v.workunit_id: v.outcome for v in validation.validate_pending()}

    by_x = {wu.input["x"]: wu.id for wu in WorkUnit.objects.all()}
    assert {x: verdicts[by_x[x]] for x in range(6)} == {
        x: ("valid" if x % 2 == 0 else "inconclusive") for x in range(6)
    }
    valid = Replica.objects.filter(validate_state=ValidateState.VALID)
    assert valid.count() == 6
    assert sorted(CreditEntry.objects.values_list("replica_id", flat=True)) == sorted(
        valid.values_list("id", flat=True)
    )
    honest.refresh_from_db()
    other.refresh_from_db()
    assert (honest.n_valid, other.n_valid) == (3, 3)
    assert honest.total_credit == other.total_credit > 0
    for x in range(1, 6, 2):
        wu = WorkUnit.objects.get(id=by_x[x])
        assert wu.canonical_replica_id is None
        assert wu.target_nresults == 3
    # Nothing left to validate, and a second pass grants nothing more.
    assert validation.validate_pending() == []
    assert CreditEntry.objects.count() == 6


def test_assimilation_of_a_batch_stores_each_canonical_output_once(project_factory, host_factory):
    project = project_factory()
    batch = _batch(project, 5)
    for _ in range(2):
        _report_all(project, host_factory(project), square, 5)
    validation.validate_pending()

    assert assimilation.assimilate_pending() == 5
    assert assimilation.assimilate_pending() == 0

    outputs = AssimilatedOutput.objects.filter(batch=batch)
    assert sorted(o.output["y"] for o in outputs) == [x * x for x in range(5)]
    assert not WorkUnit.objects.exclude(assimilate_state=AssimilateState.DONE).exists()
    batch.refresh_from_db()
    assert (batch.n_assimilated, batch.state) == (5, "completed")


def test_a_drain_works_through_every_batch_and_clears_its_flag(
    project_factory, host_factory, monkeypatch
):
    monkeypatch.setattr(validation, "BATCH", 2)
    monkeypatch.setattr(assimilation, "BATCH", 2)
    project = project_factory()
    batch = _batch(project, 7)
    for _ in range(2):
        _report_all(project, host_factory(project), square, 7)
    # Results queued the drains as they arrived (in-process); start again from pending.
    WorkUnit.objects.update(need_validate=True)
    Replica.objects.update(validate_state=ValidateState.INIT, granted_credit=0)
    WorkUnit.objects.update(
        canonical_replica=None, assimilate_state=AssimilateState.INIT, validated_at=None
    )
    CreditEntry.objects.all().delete()
    AssimilatedOutput.objects.all().delete()
    Host.objects.update(total_credit=0, n_valid=0)
    cache.set(drains.QUEUED["validate"], 1)

    # Limits per pass are the sweep batch; a drain keeps going until nothing is left.
    assert drains.drain("validate") == 7
    assert cache.get(drains.QUEUED["validate"]) is None
    assert drains.drain("assimilate") == 7
    assert CreditEntry.objects.count() == 14
    assert AssimilatedOutput.objects.filter(batch=batch).count() == 7


def test_a_drain_out_of_budget_hands_over_to_a_fresh_task(
    project_factory, host_factory, monkeypatch
):
    project = project_factory()
    _batch(project, 3)
    for _ in range(2):
        _report_all(project, host_factory(project), square, 3)
    WorkUnit.objects.update(need_validate=True)
    Replica.objects.update(validate_state=ValidateState.INIT)
    WorkUnit.objects.update(canonical_replica=None, assimilate_state=AssimilateState.INIT)
    requested = []
    monkeypatch.setattr(drains, "_request", requested.append)

    # A spent budget does no pass at all and asks for a successor instead.
    assert drains.drain("validate", budget=0) == 0
    assert requested == ["validate"]
    assert WorkUnit.objects.filter(need_validate=True).count() == 3


@pytest.mark.parametrize("kind", ["validate", "assimilate"])
def test_a_drain_with_nothing_pending_does_nothing(db, kind):
    assert drains.drain(kind) == 0


def test_a_drain_pauses_after_a_small_pass_and_keeps_its_flag_meanwhile(
    project_factory, host_factory, monkeypatch
):
    """Requests during the pause find the flag set and queue no second drain; the work units
    they flagged are taken by the drain's next pass."""
    project = project_factory()
    _batch(project, 4)
    for _ in range(2):
        _report_all(project, host_factory(project), square, 4)
    WorkUnit.objects.update(need_validate=True, canonical_replica=None)
    Replica.objects.update(validate_state=ValidateState.INIT)
    cache.set(drains.QUEUED["validate"], 1)
    pauses, flags = [], []

    def pause(seconds):
        pauses.append(seconds)
        flags.append(cache.get(drains.QUEUED["validate"]))

    monkeypatch.setattr(drains.time, "sleep", pause)
    assert drains.drain("validate", linger=0.25) == 4
    assert pauses == [0.25]
    assert flags == [1]
    assert cache.get(drains.QUEUED["validate"]) is None
