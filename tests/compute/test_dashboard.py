from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import pytest

from compute.assimilation import assimilate_workunit
from compute.dashboard import grid_status
from compute.models import CreditEntry, Host, Project, WorkUnit
from compute.results import record_error, record_result
from compute.scheduler import Assignment, lease_replicas
from compute.submission import cancel_workunits, create_batch
from compute.transitioner import transition_workunit
from compute.validation import validate_workunit

pytestmark = pytest.mark.django_db


def submit(project: Project, n: int) -> list[WorkUnit]:
    app = project.apps.get()
    batch = create_batch(project, app, [{"x": i} for i in range(1, n + 1)], name="test")
    return list(batch.workunits.order_by("id"))


def report(host: Host, job: Assignment, now: datetime) -> None:
    x = job.input["x"]
    receipt = record_result(host, job.replica_id, job.lease_token, {"y": x * x}, 600.0, now)
    assert receipt.accepted


def fail(host: Host, job: Assignment, now: datetime) -> None:
    assert record_error(host, job.replica_id, job.lease_token, "kernel crashed", now).accepted


@pytest.fixture
def scenario(project_factory, host_factory) -> dict:
    """Three work units with a quorum of two: one validated and assimilated, one with an
    error, one waiting for its second replica; two hosts returned work, one only said hello."""
    now = timezone.now()
    project = project_factory(slug="squares", name="Squares")
    wu = submit(project, 3)
    first, second = host_factory(project), host_factory(project)
    host_factory(project, last_seen=now - timedelta(minutes=5))
    host_factory(project, last_seen=now - timedelta(hours=3))

    # Leased twenty minutes ago, back ten minutes later: credit is capped by the wall time.
    sent, back = now - timedelta(minutes=20), now - timedelta(minutes=10)
    jobs1 = lease_replicas(first, 3, now=sent)
    jobs2 = lease_replicas(second, 2, now=sent)
    assert [j.workunit_id for j in jobs1] == [w.id for w in wu]
    assert [j.workunit_id for j in jobs2] == [wu[0].id, wu[1].id]
    for job in jobs1:
        report(first, job, back)
    report(second, jobs2[0], back)
    fail(second, jobs2[1], back)
    assert validate_workunit(wu[0].id, now).outcome == "valid"
    assert assimilate_workunit(wu[0].id, now) == "done"
    return {"project": project, "now": now, "workunits": wu}


def test_it_counts_queues_and_the_last_hours_throughput(scenario):
    status = grid_status(now=scenario["now"])

    (row,) = status.projects
    assert row.slug == "squares"
    assert (row.unsent, row.in_progress) == (1, 0)
    assert (row.need_validate, row.assimilate_ready) == (0, 0)
    assert (row.received, row.replica_errors, row.hosts_reporting) == (5, 1, 2)
    assert (row.validated, row.assimilated, row.failed_workunits) == (1, 1, 0)
    granted = sum(CreditEntry.objects.values_list("amount", flat=True))
    assert granted > 0
    assert row.credit == pytest.approx(granted)
    assert status.hosts_active == 3


def test_it_counts_work_units_waiting_for_the_validator_and_the_assimilator(
    project_factory, host_factory
):
    now = timezone.now()
    project = project_factory()
    wu = submit(project, 2)
    hosts = [host_factory(project), host_factory(project)]
    for host in hosts:
        for job in lease_replicas(host, 2, now=now):
            report(host, job, now)
    assert validate_workunit(wu[0].id, now).outcome == "valid"

    (row,) = grid_status(now=now).projects

    assert (row.unsent, row.in_progress) == (0, 0)
    assert row.need_validate == 1
    assert row.assimilate_ready == 1


def test_in_progress_counts_leased_replicas(project_factory, host_factory):
    project = project_factory()
    submit(project, 4)
    lease_replicas(host_factory(project), 3)

    (row,) = grid_status().projects

    assert (row.unsent, row.in_progress) == (5, 3)


def test_an_hour_later_the_queues_stay_and_the_throughput_is_gone(scenario):
    status = grid_status(now=scenario["now"] + timedelta(hours=1, seconds=1))

    (row,) = status.projects
    assert row.unsent == 1
    assert (row.received, row.replica_errors, row.validated, row.assimilated) == (0, 0, 0, 0)
    assert (row.credit, row.hosts_reporting) == (0, 0)
    assert status.hosts_active == 0


def test_failed_work_units_count_but_cancelled_ones_do_not(project_factory, host_factory):
    now = timezone.now()
    project = project_factory(min_quorum=1, target_nresults=1, max_error_results=1)
    doomed, cancelled = submit(project, 2)
    for host in (host_factory(project), host_factory(project)):
        (job,) = [j for j in lease_replicas(host, 2, now=now) if j.workunit_id == doomed.id]
        fail(host, job, now)
        transition_workunit(doomed.id, now)
    cancel_workunits([cancelled.id], now)
    for wu in (doomed, cancelled):
        assert assimilate_workunit(wu.id, now) == "done"

    (row,) = grid_status(now=now).projects

    assert row.failed_workunits == 1
    assert row.replica_errors == 2
    assert row.assimilated == 0


def test_it_reports_every_project_and_adds_them_up(project_factory, host_factory):
    a, b = project_factory(name="A"), project_factory(name="B")
    submit(a, 2)
    submit(b, 3)

    status = grid_status()

    assert [p.name for p in status.projects] == ["A", "B"]
    assert [p.unsent for p in status.projects] == [4, 6]
    assert status.totals.unsent == 10


def test_it_can_be_limited_to_some_projects(project_factory):
    project_factory()
    b = project_factory()
    submit(b, 1)

    status = grid_status([b])

    assert [p.slug for p in status.projects] == [b.slug]
    assert status.projects[0].unsent == 2


def test_its_queries_do_not_grow_with_the_projects(project_factory):
    submit(project_factory(), 2)
    with CaptureQueriesContext(connection) as one_project:
        grid_status()
    for _ in range(4):
        submit(project_factory(), 2)

    with CaptureQueriesContext(connection) as five_projects:
        grid_status()

    assert len(five_projects) == len(one_project)


def test_it_reads_as_json(scenario):
    data = grid_status(now=scenario["now"]).as_dict()

    assert data["hosts_active"] == 3
    assert data["projects"][0]["slug"] == "squares"
    assert data["totals"]["received"] == 5
    assert "hosts_reporting" not in data["totals"]
