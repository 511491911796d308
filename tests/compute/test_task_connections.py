"""A task run eagerly (the embedded mode) inside its caller's transaction leaves the
caller's connection alone: the after-task connection check is for worker processes."""

from __future__ import annotations

from django.db import connection, transaction

from compute import tasks
from compute.models import Project


def test_an_eager_task_inside_a_transaction_keeps_the_callers_connection(project_factory):
    project = project_factory()
    with transaction.atomic():
        Project.objects.filter(id=project.id).update(name="Renamed")
        tasks.sweep_feeder.apply()
        assert connection.in_atomic_block
        assert Project.objects.get(id=project.id).name == "Renamed"
    assert Project.objects.get(id=project.id).name == "Renamed"
