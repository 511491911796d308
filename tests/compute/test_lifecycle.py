from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import pytest

from compute import lifecycle, results, scheduler, submission
from compute.models import Replica, WorkUnit
from compute.states import REPLICA_TRANSITIONS, AssimilateState, ServerState


@pytest.fixture
def replica(project_factory, host_factory):
    project = project_factory(min_quorum=1, target_nresults=1)
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="one")
    return Replica.objects.get(), host_factory(project)


def states(replica_id: int) -> tuple[str, str, str]:
    r = Replica.objects.get(id=replica_id)
    return (r.server_state, r.outcome, r.validate_state)


def lease(replica, host, minutes=10):
    """Lease the replica to the host through the scheduler; the assignment."""
    (a,) = scheduler.lease_replicas(host, 1)
    assert a.replica_id == replica.id
    Replica.objects.filter(id=a.replica_id).update(
        deadline=timezone.now() + timedelta(minutes=minutes)
    )
    return a


def test_every_transition_leaves_a_state_and_enters_a_different_one():
    for name, (source, target) in REPLICA_TRANSITIONS.items():
        assert source != target, name


def test_lease_moves_an_unsent_replica_to_in_progress(replica):
    r, host = replica
    lease(r, host)
    assert states(r.id) == REPLICA_TRANSITIONS["lease"][1]
    assert Replica.objects.get(id=r.id).host_id == host.id


def test_a_leased_replica_cannot_be_leased_again(replica, host_factory):
    r, host = replica
    lease(r, host)
    assert scheduler.lease_replicas(host_factory(r.project), 1) == []
    assert Replica.objects.get(id=r.id).host_id == host.id


def test_success_needs_the_right_host_and_token(replica, host_factory):
    r, host = replica
    a = lease(r, host)
    assert not results.record_result(host_factory(), r.id, a.lease_token, {"y": 9}, 1.0).accepted
    assert not results.record_result(host, r.id, "b" * 32, {"y": 9}, 1.0).accepted
    assert states(r.id)[0] == ServerState.IN_PROGRESS
    assert results.record_result(host, r.id, a.lease_token, {"y": 9}, 1.0).accepted
    assert states(r.id)[:2] == REPLICA_TRANSITIONS["report_success"][1][:2]


def test_a_second_success_for_the_same_replica_changes_nothing(replica):
    r, host = replica
    a = lease(r, host)
    assert results.record_result(host, r.id, a.lease_token, {"y": 9}, 1.0).accepted
    assert not results.record_result(host, r.id, a.lease_token, {"y": 10}, 1.0).accepted
    assert Replica.objects.get(id=r.id).output == {"y": 9}


def test_a_result_after_the_deadline_is_refused(replica):
    r, host = replica
    a = lease(r, host, minutes=1)
    later = timezone.now() + timedelta(minutes=2)
    assert not results.record_result(host, r.id, a.lease_token, {}, 1, now=later).accepted
    assert states(r.id)[0] == ServerState.IN_PROGRESS


def test_error_moves_in_progress_to_client_error(replica):
    r, host = replica
    a = lease(r, host)
    assert results.record_error(host, r.id, a.lease_token, "oom").accepted
    assert states(r.id) == REPLICA_TRANSITIONS["report_error"][1]
    assert Replica.objects.get(id=r.id).error_reason == "oom"


def test_time_out_only_touches_replicas_past_their_deadline(replica):
    r, host = replica
    lease(r, host, minutes=5)
    assert lifecycle.time_out([r.id], timezone.now()) == 0
    assert lifecycle.time_out([r.id], timezone.now() + timedelta(minutes=6)) == 1
    assert states(r.id) == REPLICA_TRANSITIONS["time_out"][1]


def test_not_needed_only_touches_unsent_replicas(replica):
    r, _ = replica
    assert lifecycle.not_needed([r.workunit_id]) == 1
    assert states(r.id) == REPLICA_TRANSITIONS["not_needed"][1]


def test_abort_returns_the_hosts_to_tell(replica):
    r, host = replica
    lease(r, host)
    assert lifecycle.abort_in_progress([r.workunit_id]) == [(r.id, host.id)]
    assert states(r.id) == REPLICA_TRANSITIONS["abort"][1]


def test_validate_states_move_only_from_init_or_inconclusive(replica):
    r, host = replica
    a = lease(r, host)
    # Validated in-process right away where Celery runs so: put it back to "init".
    results.record_result(host, r.id, a.lease_token, {}, 1)
    Replica.objects.filter(id=r.id).update(validate_state="init")
    assert lifecycle.set_validate_state([r.id], "validate_inconclusive") == 1
    assert lifecycle.set_validate_state([r.id], "validate_valid") == 0
    assert lifecycle.set_validate_state([r.id], "resolve_valid") == 1
    assert lifecycle.set_validate_state([r.id], "resolve_invalid") == 0
    assert states(r.id) == REPLICA_TRANSITIONS["resolve_valid"][1]


def test_assimilate_state_moves_in_order(replica):
    r, _ = replica
    wu_id = r.workunit_id
    assert not lifecycle.move_assimilate_state(wu_id, "done")
    assert lifecycle.move_assimilate_state(wu_id, "ready")
    assert not lifecycle.move_assimilate_state(wu_id, "ready")
    assert lifecycle.move_assimilate_state(wu_id, "done")
    assert WorkUnit.objects.get(id=wu_id).assimilate_state == AssimilateState.DONE


def test_results_ask_for_validation_once_the_quorum_is_reached(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="one")
    wu = WorkUnit.objects.get()
    first, second = host_factory(project), host_factory(project)
    (a,) = scheduler.lease_replicas(first, 1)
    (b,) = scheduler.lease_replicas(second, 1)

    one = results.record_result(first, a.replica_id, a.lease_token, {"y": 9}, 1)
    assert not one.validation_queued
    assert WorkUnit.objects.get(id=wu.id).n_success == 1
    two = results.record_result(second, b.replica_id, b.lease_token, {"y": 9}, 1)
    assert two.validation_queued
    # Flagged, or validated already where Celery runs in-process.
    wu.refresh_from_db()
    assert wu.n_success == 2
    assert wu.need_validate or wu.canonical_replica_id is not None
