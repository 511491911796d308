from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import pytest

from compute import submission, transitioner
from compute.models import HostApp, Replica, WorkUnit
from compute.results import record_error, record_result
from compute.scheduler import lease_replicas
from compute.states import AssimilateState, ErrorMask, Outcome, ServerState


@pytest.fixture
def project(project_factory):
    return project_factory(
        min_quorum=2, target_nresults=2, max_error_results=1, max_total_results=4, delay_bound=600
    )


def one_workunit(project):
    submission.create_batch(project, project.apps.get(), [{"x": 2}], name="b")
    return WorkUnit.objects.get()


def test_a_passed_deadline_means_no_reply_and_a_new_replica(project, host_factory):
    wu = one_workunit(project)
    host = host_factory(project)
    (a,) = lease_replicas(host, 1)
    later = timezone.now() + timedelta(seconds=601)
    assert transitioner.time_out_replicas(later) == [wu.id]
    transitioner.transition_due(later)
    r = Replica.objects.get(id=a.replica_id)
    assert (r.server_state, r.outcome) == (ServerState.OVER, Outcome.NO_REPLY)
    assert wu.replicas.filter(server_state=ServerState.UNSENT).count() == 2
    assert HostApp.objects.get(host=host).daily_quota == project.daily_quota_per_core // 2


def test_replicas_are_created_up_to_the_target(project):
    wu = one_workunit(project)
    WorkUnit.objects.filter(id=wu.id).update(target_nresults=3)
    transitioner.transition_workunit(wu.id)
    assert wu.replicas.count() == 3
    assert sorted(wu.replicas.values_list("ordinal", flat=True)) == [0, 1, 2]


def test_too_many_errors_fail_the_work_unit(project, host_factory):
    wu = one_workunit(project)
    for _ in range(2):
        host = host_factory(project)
        (a,) = lease_replicas(host, 1)
        record_error(host, a.replica_id, a.lease_token, "crash")
        transitioner.transition_workunit(wu.id)
    wu.refresh_from_db()
    assert wu.error_mask & ErrorMask.TOO_MANY_ERRORS
    assert wu.assimilate_state == AssimilateState.READY
    assert not wu.replicas.filter(server_state=ServerState.UNSENT).exists()


def test_too_many_total_replicas_fail_the_work_unit(project, host_factory):
    WorkUnit.objects.all().delete()
    project.max_error_results = 10
    project.save()
    wu = one_workunit(project)
    later = timezone.now()
    for _ in range(3):
        for host in (host_factory(project), host_factory(project)):
            lease_replicas(host, 1, now=later)
        later += timedelta(seconds=601)
        transitioner.run_transitioner(later)
    wu.refresh_from_db()
    assert wu.error_mask & ErrorMask.TOO_MANY_TOTAL
    assert wu.replicas.count() <= wu.max_total_results


def test_too_many_successes_without_agreement_fail_the_work_unit(project_factory, host_factory):
    from compute import validation

    project = project_factory(
        min_quorum=2, target_nresults=2, max_success_results=2, max_total_results=9
    )
    wu = one_workunit(project)
    for value in (1, 2, 3):
        host = host_factory(project)
        (a,) = lease_replicas(host, 1)
        record_result(host, a.replica_id, a.lease_token, {"y": value}, 1.0)
        validation.validate_pending()
        transitioner.transition_due(timezone.now() + timedelta(seconds=1))
    wu.refresh_from_db()
    assert wu.error_mask & ErrorMask.TOO_MANY_SUCCESS
    assert wu.canonical_replica_id is None


def test_a_failed_work_unit_aborts_replicas_in_progress(project, host_factory):
    wu = one_workunit(project)
    host = host_factory(project)
    (a,) = lease_replicas(host, 1)
    WorkUnit.objects.filter(id=wu.id).update(error_mask=ErrorMask.CANCELLED)
    transitioner.transition_workunit(wu.id)
    r = Replica.objects.get(id=a.replica_id)
    assert (r.server_state, r.outcome) == (ServerState.OVER, Outcome.DIDNT_NEED)
    assert not wu.replicas.filter(server_state=ServerState.UNSENT).exists()


def test_unsent_replicas_of_a_validated_work_unit_are_not_needed(project_factory, host_factory):
    from compute import validation

    project = project_factory(min_quorum=2, target_nresults=3)
    wu = one_workunit(project)
    for _ in range(2):
        host = host_factory(project)
        (a,) = lease_replicas(host, 1)
        record_result(host, a.replica_id, a.lease_token, {"y": 4}, 1.0)
    validation.validate_pending()
    assert (
        wu.replicas.filter(outcome=Outcome.DIDNT_NEED, server_state=ServerState.OVER).count() == 1
    )


def test_the_transition_flag_is_cleared(project):
    wu = one_workunit(project)
    WorkUnit.objects.filter(id=wu.id).update(transition_time=timezone.now())
    assert transitioner.transition_due() == 1
    assert WorkUnit.objects.get(id=wu.id).transition_time is None
    assert transitioner.transition_due() == 0
