from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from compute import assimilation, cleanup, submission, validation
from compute.models import AssimilatedOutput, CreditEntry, Replica, WorkUnit
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.states import FileDeleteState


def assimilated(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": 2}], name="b")
    for _ in range(2):
        host = host_factory(project)
        (a,) = lease_replicas(host, 1)
        record_result(host, a.replica_id, a.lease_token, {"y": 4}, 1.0)
    validation.validate_pending()
    assimilation.assimilate_pending()
    return WorkUnit.objects.get()


def test_outputs_are_kept_during_the_retention_period(project_factory, host_factory):
    wu = assimilated(project_factory, host_factory)
    assert cleanup.delete_outputs(timezone.now() + timedelta(days=1)) == 0
    assert Replica.objects.filter(workunit=wu, output__isnull=False).count() == 2


def test_outputs_are_deleted_after_the_retention_period(project_factory, host_factory, settings):
    wu = assimilated(project_factory, host_factory)
    later = timezone.now() + timedelta(days=settings.COMPUTE["OUTPUT_RETENTION_DAYS"] + 1)
    assert cleanup.delete_outputs(later) == 1
    assert not Replica.objects.filter(workunit=wu, output__isnull=False).exists()
    assert WorkUnit.objects.get(id=wu.id).file_delete_state == FileDeleteState.DONE
    assert AssimilatedOutput.objects.get(workunit_id=wu.id).output == {"y": 4}


def test_old_rows_are_purged_but_the_ledger_and_outputs_stay(
    project_factory, host_factory, settings
):
    wu = assimilated(project_factory, host_factory)
    later = timezone.now() + timedelta(days=settings.COMPUTE["PURGE_AFTER_DAYS"] + 1)
    cleanup.delete_outputs(later)
    assert cleanup.purge(later) == 1
    assert not WorkUnit.objects.filter(id=wu.id).exists()
    assert not Replica.objects.filter(workunit_id=wu.id).exists()
    assert CreditEntry.objects.filter(workunit_id=wu.id).count() == 2
    assert AssimilatedOutput.objects.filter(workunit_id=wu.id).exists()


def test_nothing_is_purged_before_its_outputs_are_deleted(project_factory, host_factory, settings):
    assimilated(project_factory, host_factory)
    later = timezone.now() + timedelta(days=settings.COMPUTE["PURGE_AFTER_DAYS"] + 1)
    assert cleanup.purge(later) == 0
