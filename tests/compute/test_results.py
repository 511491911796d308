"""Results, errors and progress reports one at a time (compute.results). A refused report
changes nothing at all: every refusal is checked against a snapshot of the whole database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.utils import timezone

import pytest

from compute import submission
from compute.models import Replica, WorkUnit
from compute.results import Refusal, extend_lease, record_error, record_result
from compute.scheduler import lease_replicas
from compute.states import Outcome, ServerState
from tests.compute.hostile_support import database_snapshot, snapshot_changes


@pytest.fixture
def leased(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2, delay_bound=600)
    submission.create_batch(project, project.apps.get(), [{"x": 7}], name="b")
    host = host_factory(project)
    (assignment,) = lease_replicas(host, 1)
    return project, host, assignment


@contextmanager
def nothing_changes() -> Iterator[None]:
    """The block leaves every row of every table as it found it."""
    before = database_snapshot()
    yield
    assert snapshot_changes(before, database_snapshot()) == []


def test_a_result_from_the_leasing_host_is_accepted(leased):
    _, host, a = leased
    receipt = record_result(host, a.replica_id, a.lease_token, {"y": 49}, 2.5)
    assert receipt.accepted
    assert receipt.workunit_id == a.workunit_id
    r = Replica.objects.get(id=a.replica_id)
    assert (r.server_state, r.outcome, r.output, r.cpu_time) == (
        ServerState.OVER,
        Outcome.SUCCESS,
        {"y": 49},
        2.5,
    )
    assert r.claimed_credit > 0


def test_a_result_for_another_hosts_replica_is_refused_and_changes_nothing(leased, host_factory):
    project, host, a = leased
    intruder = host_factory(project)
    with nothing_changes():
        receipt = record_result(intruder, a.replica_id, a.lease_token, {"y": 1}, 1.0)
    assert receipt.refusal == Refusal.NOT_YOURS
    r = Replica.objects.get(id=a.replica_id)
    assert (r.server_state, r.output, r.host_id) == (ServerState.IN_PROGRESS, None, host.id)


def test_a_replayed_result_is_refused(leased):
    _, host, a = leased
    assert record_result(host, a.replica_id, a.lease_token, {"y": 49}, 1.0).accepted
    with nothing_changes():
        replay = record_result(host, a.replica_id, a.lease_token, {"y": 50}, 1.0)
    assert replay.refusal == Refusal.NOT_IN_PROGRESS
    assert Replica.objects.get(id=a.replica_id).output == {"y": 49}


def test_a_result_after_the_deadline_is_refused(leased):
    _, host, a = leased
    late = timezone.now() + timedelta(seconds=601)
    with nothing_changes():
        receipt = record_result(host, a.replica_id, a.lease_token, {"y": 49}, 1.0, now=late)
    assert receipt.refusal == Refusal.LEASE_EXPIRED
    assert Replica.objects.get(id=a.replica_id).server_state == ServerState.IN_PROGRESS


def test_a_wrong_lease_token_is_refused(leased):
    _, host, a = leased
    with nothing_changes():
        receipt = record_result(host, a.replica_id, "0" * 32, {"y": 49}, 1.0)
    assert receipt.refusal == Refusal.BAD_LEASE


def test_an_unknown_replica_is_refused(leased):
    _, host, a = leased
    with nothing_changes():
        receipt = record_result(host, 10**9, a.lease_token, {"y": 49}, 1.0)
    assert receipt.refusal == Refusal.UNKNOWN_REPLICA


@pytest.mark.parametrize("cpu_time", [-1.0, float("nan"), float("inf"), "12", True, 10**400])
def test_a_nonsense_cpu_time_is_refused(leased, cpu_time):
    _, host, a = leased
    with nothing_changes():
        receipt = record_result(host, a.replica_id, a.lease_token, {"y": 49}, cpu_time)
    assert receipt.refusal == Refusal.BAD_CPU_TIME


def test_an_oversized_output_is_refused(leased, settings):
    settings.COMPUTE = {**settings.COMPUTE, "MAX_OUTPUT_BYTES": 1024}
    _, host, a = leased
    with nothing_changes():
        receipt = record_result(host, a.replica_id, a.lease_token, {"y": "x" * 2000}, 1.0)
    assert receipt.refusal == Refusal.OUTPUT_TOO_LARGE
    assert Replica.objects.get(id=a.replica_id).server_state == ServerState.IN_PROGRESS


def test_validation_is_queued_only_when_the_quorum_is_reached(leased, host_factory):
    project, host, a = leased
    assert not record_result(host, a.replica_id, a.lease_token, {"y": 49}, 1.0).validation_queued
    second = host_factory(project)
    (b,) = lease_replicas(second, 1)
    assert record_result(second, b.replica_id, b.lease_token, {"y": 49}, 1.0).validation_queued
    assert WorkUnit.objects.get(id=a.workunit_id).need_validate


def test_an_error_report_ends_the_replica_and_flags_the_work_unit(leased):
    _, host, a = leased
    receipt = record_error(host, a.replica_id, a.lease_token, "kernel threw RangeError")
    assert receipt.accepted
    r = Replica.objects.get(id=a.replica_id)
    assert (r.outcome, r.error_reason) == (Outcome.CLIENT_ERROR, "kernel threw RangeError")
    assert WorkUnit.objects.get(id=a.workunit_id).transition_time is not None
    host.refresh_from_db()
    assert host.n_error == 1


def test_an_error_for_another_hosts_replica_is_refused(leased, host_factory):
    project, _, a = leased
    intruder = host_factory(project)
    with nothing_changes():
        receipt = record_error(intruder, a.replica_id, a.lease_token, "x")
    assert receipt.refusal == Refusal.NOT_YOURS
    assert Replica.objects.get(id=a.replica_id).outcome == Outcome.INIT


def test_an_error_with_a_wrong_lease_token_is_refused(leased):
    _, host, a = leased
    with nothing_changes():
        receipt = record_error(host, a.replica_id, "0" * 32, "x")
    assert receipt.refusal == Refusal.BAD_LEASE


def test_an_error_after_the_deadline_is_refused(leased):
    _, host, a = leased
    late = timezone.now() + timedelta(seconds=601)
    with nothing_changes():
        receipt = record_error(host, a.replica_id, a.lease_token, "x", now=late)
    assert receipt.refusal == Refusal.LEASE_EXPIRED


def test_an_error_for_a_finished_replica_is_refused(leased):
    _, host, a = leased
    assert record_result(host, a.replica_id, a.lease_token, {"y": 49}, 1.0).accepted
    with nothing_changes():
        receipt = record_error(host, a.replica_id, a.lease_token, "x")
    assert receipt.refusal == Refusal.NOT_IN_PROGRESS


def test_an_error_for_an_unknown_replica_is_refused(leased):
    _, host, a = leased
    with nothing_changes():
        receipt = record_error(host, 10**9, a.lease_token, "x")
    assert receipt.refusal == Refusal.UNKNOWN_REPLICA


def test_progress_for_another_hosts_replica_is_refused(leased, host_factory):
    project, _, a = leased
    intruder = host_factory(project)
    with nothing_changes():
        receipt = extend_lease(intruder, a.replica_id, a.lease_token, 0.5)
    assert receipt.refusal == Refusal.NOT_YOURS


def test_progress_with_a_wrong_lease_token_is_refused(leased):
    _, host, a = leased
    with nothing_changes():
        receipt = extend_lease(host, a.replica_id, "0" * 32, 0.5)
    assert receipt.refusal == Refusal.BAD_LEASE


def test_progress_extends_the_deadline_within_the_projects_limit(leased):
    project, host, a = leased
    start = Replica.objects.get(id=a.replica_id).sent_at
    halfway = start + timedelta(seconds=500)
    receipt = extend_lease(host, a.replica_id, a.lease_token, 0.1, now=halfway)
    limit = start + timedelta(seconds=project.delay_bound + project.max_deadline_extension)
    assert receipt.accepted
    assert receipt.deadline == limit
    assert Replica.objects.get(id=a.replica_id).deadline == limit


def test_progress_never_shortens_a_deadline(leased):
    _, host, a = leased
    before = Replica.objects.get(id=a.replica_id).deadline
    receipt = extend_lease(host, a.replica_id, a.lease_token, 0.99)
    assert receipt.deadline == before
    assert Replica.objects.get(id=a.replica_id).deadline == before


def test_a_result_is_accepted_when_validation_cannot_be_queued(
    leased, host_factory, settings, django_capture_on_commit_callbacks, caplog
):
    """The broker and cache unreachable (Redis restarting): the committed result is still
    acknowledged, and the work unit stays flagged for the validator's sweep."""
    project, host, a = leased
    other = host_factory(project)
    (b,) = lease_replicas(other, 1)
    assert record_result(other, b.replica_id, b.lease_token, {"y": 49}, 1.0).accepted
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
        }
    }
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        receipt = record_result(host, a.replica_id, a.lease_token, {"y": 49}, 2.5)

    assert receipt.accepted
    assert receipt.validation_queued
    assert len(callbacks) == 1
    assert "Error calling" in caplog.text
    assert "request_validation" in caplog.text
    wu = WorkUnit.objects.get(id=receipt.workunit_id)
    assert wu.need_validate
    assert Replica.objects.get(id=a.replica_id).outcome == Outcome.SUCCESS
