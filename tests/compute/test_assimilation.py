from __future__ import annotations

import pytest

from compute import assimilation, submission, validation
from compute.models import AssimilatedOutput, Batch, WorkUnit
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.states import AssimilateState, BatchState, ErrorMask, FileDeleteState
from tests import support


def finish(project, host_factory, n=1, output=None):
    batch = submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(n)], name="b"
    )
    for _ in range(project.min_quorum):
        host = host_factory(project, cores=max(1, n))
        for a in lease_replicas(host, n):
            record_result(
                host, a.replica_id, a.lease_token, output or {"y": a.input["x"] ** 2}, 1.0
            )
    validation.validate_pending()
    return batch


@pytest.fixture
def project(project_factory):
    return project_factory(min_quorum=2, target_nresults=2)


def test_the_handler_gets_the_canonical_output_exactly_once(project_factory, host_factory):
    project = project_factory(app_kwargs={"assimilator_path": "tests.support.recording_handler"})
    support.HANDLED.clear()
    finish(project, host_factory, output={"y": 4})
    wu = WorkUnit.objects.get()
    assert assimilation.assimilate_workunit(wu.id) == "done"
    assert assimilation.assimilate_workunit(wu.id) == "nothing to do"
    assert [(wu.id, {"y": 4})] == support.HANDLED
    wu.refresh_from_db()
    assert wu.assimilate_state == AssimilateState.DONE
    assert wu.assimilated_at is not None


def test_the_default_handler_keeps_the_output_and_batch_progress_follows(project, host_factory):
    batch = finish(project, host_factory, n=3)
    assert assimilation.assimilate_pending() == 3
    batch.refresh_from_db()
    assert (batch.n_assimilated, batch.state) == (3, BatchState.COMPLETED)
    assert batch.completed_at is not None
    assert sorted(o.output["y"] for o in AssimilatedOutput.objects.filter(batch=batch)) == [0, 1, 4]


def test_a_failing_handler_is_recorded_and_retried_then_parked(
    project_factory, host_factory, settings
):
    settings.COMPUTE = {**settings.COMPUTE, "ASSIMILATE_MAX_ATTEMPTS": 2}
    project = project_factory(app_kwargs={"assimilator_path": "tests.support.failing_handler"})
    batch = finish(project, host_factory)
    wu = WorkUnit.objects.get()
    assert assimilation.assimilate_workunit(wu.id) == "will retry"
    wu.refresh_from_db()
    assert wu.assimilate_state == AssimilateState.READY
    assert "archive is unreachable" in wu.assimilate_error
    assert wu.assimilate_attempts == 1
    assert assimilation.assimilate_workunit(wu.id) == "failed"
    wu.refresh_from_db()
    assert wu.assimilate_state == AssimilateState.ERROR
    assert Batch.objects.get(id=batch.id).n_assimilated == 0
    # An operator fixes the archive and retries.
    project.apps.update(assimilator_path="compute.assimilation.store_output")
    assert submission.retry_workunits([wu.id]) == 1
    assert assimilation.assimilate_workunit(wu.id) == "done"


def test_an_errored_work_unit_counts_as_errored_in_its_batch(project, host_factory):
    batch = submission.create_batch(project, project.apps.get(), [{"x": 1}], name="b")
    wu = WorkUnit.objects.get()
    submission.cancel_workunits([wu.id])
    assert assimilation.assimilate_workunit(wu.id) == "done"
    batch.refresh_from_db()
    assert (batch.n_errored, batch.n_assimilated, batch.state) == (1, 0, BatchState.COMPLETED)
    assert not AssimilatedOutput.objects.exists()


def test_outputs_become_deletable_once_assimilated_and_nothing_is_out(project, host_factory):
    finish(project, host_factory)
    wu = WorkUnit.objects.get()
    assimilation.assimilate_workunit(wu.id)
    assert WorkUnit.objects.get(id=wu.id).file_delete_state == FileDeleteState.READY


def test_cancelling_a_batch_fails_its_open_work_units(project, host_factory):
    batch = submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(3)], name="b"
    )
    assert submission.cancel_batch(batch) == 3
    assert all(wu.error_mask & ErrorMask.CANCELLED for wu in WorkUnit.objects.all())
    assimilation.assimilate_pending()
    batch.refresh_from_db()
    assert (batch.state, batch.n_errored) == (BatchState.CANCELLED, 3)


def test_retrying_an_errored_work_unit_sends_it_out_again(project, host_factory):
    from compute.results import record_error
    from compute.states import ServerState

    batch = submission.create_batch(project, project.apps.get(), [{"x": 1}], name="b")
    WorkUnit.objects.update(max_error_results=0)
    wu = WorkUnit.objects.get()
    host = host_factory(project)
    (a,) = lease_replicas(host, 1)
    record_error(host, a.replica_id, a.lease_token, "crash")
    from compute import transitioner

    transitioner.transition_workunit(wu.id)
    assimilation.assimilate_workunit(wu.id)
    assert Batch.objects.get(id=batch.id).n_errored == 1
    assert submission.retry_workunits([wu.id]) == 1
    wu.refresh_from_db()
    assert wu.error_mask == 0
    assert wu.assimilate_state == AssimilateState.INIT
    assert wu.replicas.filter(server_state=ServerState.UNSENT).exists()
    batch.refresh_from_db()
    assert (batch.n_errored, batch.state) == (0, BatchState.IN_PROGRESS)
