"""The quorum-2 scenario on PostgreSQL + Redis, with validation, assimilation and the
periodic sweeps running in a real Celery worker process."""

from __future__ import annotations

import time

from django.utils import timezone

import pytest

from compute import results, scheduler, submission
from compute.dotted import resolve
from compute.models import AssimilatedOutput, CreditEntry, HostApp, Replica, WorkUnit
from compute.states import AssimilateState, Outcome, ValidateState
from tests.support import square

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_validates_and_assimilates_everything(
    celery_worker, project_factory, host_factory
):
    project = project_factory(min_quorum=2, target_nresults=2, delay_bound=4)
    batch = submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(100)], name="squares"
    )
    honest = [host_factory(project, cores=4) for _ in range(3)]
    cheater = host_factory(project, cores=4)
    silent = host_factory(project, cores=4)
    reference = resolve(project.apps.get().reference_path)

    deadline = time.monotonic() + 180
    while (
        WorkUnit.objects.filter(batch=batch).exclude(assimilate_state=AssimilateState.DONE).exists()
    ):
        assert time.monotonic() < deadline, "the worker did not finish the batch in time"
        for host in [*honest, cheater, silent]:
            for a in scheduler.lease_replicas(host, 8):
                if host is silent:
                    continue
                output = reference(a.input) if host is not cheater else {"y": -a.input["x"] - 1}
                results.record_result(host, a.replica_id, a.lease_token, output, 0.01)
        time.sleep(0.2)

    assert (
        WorkUnit.objects.filter(batch=batch, error_mask=0, canonical_replica__isnull=False).count()
        == 100
    )
    assert all(o.output == square(o.input) for o in AssimilatedOutput.objects.filter(batch=batch))
    assert AssimilatedOutput.objects.filter(batch=batch).count() == 100
    batch.refresh_from_db()
    assert (batch.n_assimilated, batch.state) == (100, "completed")

    assert not CreditEntry.objects.filter(host=cheater).exists()
    app = project.apps.get()
    assert HostApp.objects.get(host=cheater, app=app).daily_quota < project.daily_quota_per_core
    assert Replica.objects.filter(host=silent, outcome=Outcome.NO_REPLY).exists()
    valid = Replica.objects.filter(workunit__batch=batch, validate_state=ValidateState.VALID)
    assert (
        CreditEntry.objects.filter(workunit_id__in=batch.workunits.values("id")).count()
        == valid.count()
    )
    # The test process never validated anything: every verdict came from the worker.
    assert all(wu.validated_at <= timezone.now() for wu in batch.workunits.all())
