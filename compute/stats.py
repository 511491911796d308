"""The live numbers of a project's public page.

:func:`project_stats` is the one definition: the page renders it, ``stats.json`` returns it
and the project WebSocket sends it as ``{"type": "stats", ...}``. The definitions:

- **volunteers online**: hosts seen by the server in the last ``ONLINE_WINDOW`` (2 minutes,
  ``Host.last_seen``) that hold a replica of the project in progress or returned one in that
  window. A host that is connected but computing for another project does not count.
- **results today**: successful results of the project received in the last 24 hours (a
  rolling window, so the number does not drop to zero at midnight UTC). Errors, timeouts
  and replicas that were not needed are not results.
- **current batch**: the newest batch in progress; when none is, the newest completed batch
  (so a finished picture stays on the page); cancelled batches never. ``done`` counts its
  work units assimilated or failed for good, ``total`` all of them.

Each number is one query. The replica counts read only replicas in progress or received in
the window (the partial ``replica_deadline`` index and ``replica_received_at``), never the
whole table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TypedDict

from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from compute.models import Batch, Project, Replica
from compute.states import BatchState, Outcome, ServerState

ONLINE_WINDOW = timedelta(minutes=2)
RESULTS_WINDOW = timedelta(hours=24)


class BatchProgress(TypedDict):
    id: int
    done: int
    total: int


class ProjectStats(TypedDict):
    online: int
    results_today: int
    batch: BatchProgress | None


def volunteers_online(project: Project, now: datetime | None = None) -> int:
    since = (now or timezone.now()) - ONLINE_WINDOW
    return (
        Replica.objects.filter(project=project, host__last_seen__gte=since)
        .filter(Q(server_state=ServerState.IN_PROGRESS) | Q(received_at__gte=since))
        .order_by()
        .values("host_id")
        .distinct()
        .count()
    )


def results_since(project_ids: Iterable[int], since: datetime) -> dict[int, int]:
    """Successful results received since ``since``, per project (absent: none)."""
    rows = (
        Replica.objects.filter(
            received_at__gte=since, outcome=Outcome.SUCCESS, project_id__in=list(project_ids)
        )
        .order_by()
        .values("project_id")
        .annotate(n=Count("id"))
    )
    return {row["project_id"]: row["n"] for row in rows}


def results_today(project: Project, now: datetime | None = None) -> int:
    since = (now or timezone.now()) - RESULTS_WINDOW
    return results_since([project.id], since).get(project.id, 0)


def current_batches(queryset: QuerySet[Batch] | None = None) -> QuerySet[Batch]:
    """Batches in the order that makes the first one "current": in progress before
    completed, newer before older; cancelled ones left out."""
    queryset = Batch.objects.all() if queryset is None else queryset
    return queryset.exclude(state=BatchState.CANCELLED).order_by(
        Case(
            When(state=BatchState.IN_PROGRESS, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        "-created_at",
        "-id",
    )


def current_batch(project: Project) -> Batch | None:
    return current_batches(project.batches.all()).first()


def current_batch_subquery() -> Subquery:
    """The id of each project's current batch, for ``Project.objects.annotate``."""
    batches = current_batches(Batch.objects.filter(project=OuterRef("pk")))
    return Subquery(batches.values("id")[:1])


def batch_progress(batch: Batch | None) -> BatchProgress | None:
    if batch is None:
        return None
    return {"id": batch.id, "done": batch.n_done, "total": batch.n_workunits}


def project_stats(project: Project, now: datetime | None = None) -> ProjectStats:
    """The live numbers of ``project``, as the project WebSocket sends them (without
    ``type``)."""
    now = now or timezone.now()
    return {
        "online": volunteers_online(project, now),
        "results_today": results_today(project, now),
        "batch": batch_progress(current_batch(project)),
    }
