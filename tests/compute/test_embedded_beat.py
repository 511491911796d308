from __future__ import annotations

import time

import pytest

from compute.embedded_beat import EmbeddedBeat
from compute.models import WorkUnit


@pytest.mark.django_db(transaction=True)
def test_the_embedded_beat_runs_the_sweeps_on_their_schedule(project_factory):
    from compute import submission

    project = project_factory()
    submission.create_batch(project, project.apps.get(), [{"x": 1}], name="b")
    WorkUnit.objects.update(target_nresults=3)
    from django.utils import timezone

    WorkUnit.objects.update(transition_time=timezone.now())
    beat = EmbeddedBeat(
        {
            "transitioner": {"task": "compute.tasks.sweep_transitioner", "schedule": 0.1},
            "feeder": {"task": "compute.tasks.sweep_feeder", "schedule": 10},
        }
    )
    beat.start()
    try:
        deadline = time.monotonic() + 10
        while beat.runs["transitioner"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        beat.stop()
        beat.join(5)
    assert beat.runs["transitioner"] >= 3
    assert beat.runs["feeder"] == 1
    # The transitioner really ran: the work unit got its third replica.
    assert WorkUnit.objects.get().replicas.count() == 3
