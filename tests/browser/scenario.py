"""Scenario data and read-backs, run inside the platform's own database.

The tests' pytest process is not connected to the SQLite file the runplatform subprocess
serves, so these functions run through ``manage.py shell -c`` with the server's environment
(``Platform.call`` in server.py) and print one JSON line for the test to read.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model

from compute import submission
from compute.demo import install_example
from compute.examples import EXAMPLES, mandelbrot
from compute.models import Batch, Host, Project, Replica


def emit(value: Any) -> None:
    print(json.dumps(value, default=str))


def install_mandelbrot(
    slug: str, name: str, *, width: int, height: int, tile: int, max_iter: int
) -> None:
    """A Mandelbrot project with quorum 2 and one batch: the demo region at this size."""
    owner, _ = get_user_model().objects.get_or_create(username="owner")
    # Created before install_example, which keeps an existing project's replication policy.
    Project.objects.create(slug=slug, name=name, owner=owner, min_quorum=2, target_nresults=2)
    installed = install_example(slug, name, EXAMPLES["mandelbrot"], owner, batch=False)
    job = {**mandelbrot.DEMO_JOB, "width": width, "height": height, "max_iter": max_iter}
    batch = submission.create_batch(
        installed.project,
        installed.app,
        mandelbrot.split_job(job, tile),
        name=f"{name} test batch",
        submitter=owner,
    )
    emit({"slug": slug, "project": installed.project.id, "batch": batch.id, "n": batch.n_workunits})


def batch_report(batch_id: int) -> None:
    """The batch, its work units, every replica with its host, and those hosts' credit."""
    batch = Batch.objects.get(id=batch_id)
    workunits = list(
        batch.workunits.order_by("id").values(
            "id", "canonical_replica_id", "assimilate_state", "error_mask", "min_quorum"
        )
    )
    replicas = list(
        Replica.objects.filter(workunit__batch=batch)
        .order_by("id")
        .values(
            "id",
            "workunit_id",
            "host__uuid",
            "server_state",
            "outcome",
            "validate_state",
            "cpu_time",
            "claimed_credit",
            "granted_credit",
        )
    )
    hosts = {r["host__uuid"] for r in replicas if r["host__uuid"]}
    credit = dict(Host.objects.filter(uuid__in=hosts).values_list("uuid", "total_credit"))
    emit(
        {
            "state": batch.state,
            "n_workunits": batch.n_workunits,
            "n_assimilated": batch.n_assimilated,
            "n_errored": batch.n_errored,
            "workunits": workunits,
            "replicas": [_with_host(r) for r in replicas],
            "host_credit": {str(uuid): total for uuid, total in credit.items()},
        }
    )


def _with_host(replica: dict[str, Any]) -> dict[str, Any]:
    uuid = replica.pop("host__uuid")
    return {**replica, "host": str(uuid) if uuid else ""}


def install_kernel(slug: str, source: str) -> None:
    """A project whose one app runs ``source``; its kernel's URL and sha256."""
    from compute.models import App, AppVersion

    owner, _ = get_user_model().objects.get_or_create(username="owner")
    project = Project.objects.create(slug=slug, name=slug, owner=owner)
    app = App.objects.create(project=project, name="probe", title="Probe")
    version = AppVersion.objects.create(app=app, version=1, kernel=source)
    emit({"kernel_url": version.get_kernel_url(), "kernel_sha256": version.kernel_sha256})
