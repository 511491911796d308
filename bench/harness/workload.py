"""The fixed workload: one project, one app ("bench") and one batch, in the bench database;
and what the database says about how it went.

Models are imported inside the functions: the volunteer processes import ``double`` (the
app's reference, which they run to answer their tasks) without setting Django up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

PROJECT_SLUG = "bench"
APP_NAME = "bench"
REFERENCE = "bench.harness.workload.double"
KERNEL = "export function run(input) { return { y: input.x * 2 }; }\n"
DELAY_BOUND = 24 * 3600  # a lease outlives any run: nothing times out unless a host vanishes
DAILY_QUOTA = 1_000_000  # per core and app: the quota never limits a run


def double(data: Any) -> dict[str, Any]:
    """The app's Python reference: trivial and deterministic, so every replica agrees."""
    return {"y": data["x"] * 2}


@dataclass(frozen=True)
class Workload:
    project_id: int
    project_slug: str
    app_id: int
    batch_id: int
    workunits: int


def create_workload(workunits: int, quorum: int) -> Workload:
    """A project with min_quorum = target = ``quorum`` and generous limits, its app with the
    default assimilator, and one batch of ``workunits`` inputs {"x": i}."""
    from django.contrib.auth import get_user_model

    from compute import submission
    from compute.models import App, AppVersion, Project

    owner = get_user_model().objects.create_user(username="bench-owner", password=None)
    project = Project.objects.create(
        slug=PROJECT_SLUG,
        name="Benchmark",
        owner=owner,
        min_quorum=quorum,
        target_nresults=quorum,
        max_total_results=max(8, 4 * quorum),
        max_success_results=max(5, 2 * quorum),
        max_error_results=max(3, quorum),
        delay_bound=DELAY_BOUND,
        daily_quota_per_core=DAILY_QUOTA,
    )
    app = App.objects.create(
        project=project, name=APP_NAME, title="Benchmark", reference_path=REFERENCE
    )
    AppVersion.objects.create(app=app, version=1, kernel=KERNEL)
    batch = submission.create_batch(
        project, app, [{"x": i} for i in range(workunits)], name="bench"
    )
    return Workload(project.id, project.slug, app.id, batch.id, workunits)


def progress(batch_id: int) -> tuple[int, int, int]:
    """(work units assimilated, the batch's n_assimilated, its n_errored)."""
    from compute.models import Batch, WorkUnit
    from compute.states import AssimilateState

    done = WorkUnit.objects.filter(batch_id=batch_id, assimilate_state=AssimilateState.DONE)
    counters = Batch.objects.filter(id=batch_id).values_list("n_assimilated", "n_errored")[0]
    return done.count(), counters[0], counters[1]


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a is not None and b is not None else None


def measure(batch_id: int) -> dict[str, Any]:
    """End-to-end figures from the database's own timestamps: accepted results (SUCCESS
    replicas), the first lease (min sent_at), the last validation and assimilation, and how
    long each work unit waited from its last result to its assimilation."""
    from django.db import connection
    from django.db.models import Max, Min

    from compute.models import Replica, WorkUnit
    from compute.states import Outcome

    replicas = Replica.objects.filter(workunit__batch_id=batch_id)
    results = replicas.filter(outcome=Outcome.SUCCESS).count()
    first_lease = replicas.aggregate(t=Min("sent_at"))["t"]
    last = WorkUnit.objects.filter(batch_id=batch_id).aggregate(
        validated=Max("validated_at"), assimilated=Max("assimilated_at")
    )
    span = _seconds(first_lease, last["assimilated"])
    lag = [None, None]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
                    ORDER BY extract(epoch FROM w.assimilated_at - r.last_received))
                FROM {WorkUnit._meta.db_table} w
                JOIN (SELECT workunit_id, max(received_at) AS last_received
                      FROM {Replica._meta.db_table} GROUP BY workunit_id) r
                  ON r.workunit_id = w.id
                WHERE w.batch_id = %s AND w.assimilated_at IS NOT NULL
                """,
                [batch_id],
            )
            lag = cursor.fetchone()[0] or lag
    return {
        "results": results,
        "first_lease": first_lease.isoformat() if first_lease else None,
        "last_validated": last["validated"].isoformat() if last["validated"] else None,
        "last_assimilated": last["assimilated"].isoformat() if last["assimilated"] else None,
        "seconds": span,
        "results_per_second": results / span if span else None,
        "assimilation_lag_p50_s": lag[0],
        "assimilation_lag_p99_s": lag[1],
    }


def state_counts(batch_id: int) -> dict[str, int]:
    """Where the batch's work units and replicas stand (printed when a run times out)."""
    from django.db.models import Count

    from compute.models import Replica, WorkUnit

    out: dict[str, int] = {}
    for row in (
        WorkUnit.objects.filter(batch_id=batch_id)
        .values("assimilate_state", "need_validate")
        .annotate(n=Count("id"))
        .order_by()
    ):
        flag = ", need_validate" if row["need_validate"] else ""
        out[f"work units: assimilate {row['assimilate_state']}{flag}"] = row["n"]
    for row in (
        Replica.objects.filter(workunit__batch_id=batch_id)
        .values("server_state", "outcome", "validate_state")
        .annotate(n=Count("id"))
        .order_by()
    ):
        out[f"replicas: {row['server_state']}/{row['outcome']}/{row['validate_state']}"] = row["n"]
    return out
