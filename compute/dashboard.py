"""Queue depths and throughput per project: BOINC's server status page, as plain functions.

Every number is one aggregate query grouped by project over a partial or time index
(``replica_unsent``, ``replica_deadline``, ``wu_need_validate``, ``wu_assimilate_ready``,
``replica_received_at``, ``wu_validated_at``, ``wu_assimilated_at``, ``credit_project_time``),
so the cost does not grow with the number of projects and no row is loaded into Python.
The admin dashboard and the ``compute_status`` command both read :func:`grid_status`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from compute.models import App, CreditEntry, Host, Project, Replica, WorkUnit
from compute.states import AssimilateState, ErrorMask, Outcome, ServerState

WINDOW = timedelta(hours=1)

COUNTERS = (
    "unsent",
    "in_progress",
    "need_validate",
    "assimilate_ready",
    "replica_errors",
    "failed_workunits",
    "received",
    "validated",
    "assimilated",
    "credit",
    "hosts_reporting",
)
# A host may report to several projects, so its per-project counts do not add up.
TOTALLED = tuple(name for name in COUNTERS if name != "hosts_reporting")


@dataclass
class ProjectStatus:
    id: int
    slug: str
    name: str
    is_active: bool
    # Queues, right now.
    unsent: int = 0
    in_progress: int = 0
    need_validate: int = 0
    assimilate_ready: int = 0
    # Failures in the window: replicas that came back with an error, and work units that
    # failed for good (cancelled ones are not failures) and were wound down.
    replica_errors: int = 0
    failed_workunits: int = 0
    # Throughput in the window.
    received: int = 0
    validated: int = 0
    assimilated: int = 0
    credit: float = 0.0
    hosts_reporting: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GridStatus:
    now: datetime
    since: datetime
    projects: list[ProjectStatus]
    hosts_active: int
    totals: ProjectStatus = field(init=False)

    def __post_init__(self) -> None:
        totals = ProjectStatus(id=0, slug="", name="All projects", is_active=True)
        for name in TOTALLED:
            setattr(totals, name, sum(getattr(p, name) for p in self.projects))
        self.totals = totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "since": self.since.isoformat(),
            "hosts_active": self.hosts_active,
            "projects": [p.as_dict() for p in self.projects],
            "totals": {name: getattr(self.totals, name) for name in TOTALLED},
        }


def _by_project(queryset: QuerySet, aggregate: Any = None, key: str = "project_id") -> dict:
    rows = queryset.order_by().values(key).annotate(n=aggregate or Count("id"))
    return {row[key]: row["n"] for row in rows}


def unsent_by_project(project_ids: list[int]) -> dict[int, int]:
    # Grouped by app, so the partial index (app, id) WHERE unsent answers it on its own.
    app_project = dict(
        App.objects.filter(project_id__in=project_ids).values_list("id", "project_id")
    )
    per_app = _by_project(
        Replica.objects.filter(server_state=ServerState.UNSENT, app_id__in=list(app_project)),
        key="app_id",
    )
    counts: dict[int, int] = {}
    for app_id, n in per_app.items():
        project_id = app_project[app_id]
        counts[project_id] = counts.get(project_id, 0) + n
    return counts


def queue_depths(project_ids: list[int]) -> dict[str, dict[int, int]]:
    return {
        "unsent": unsent_by_project(project_ids),
        "in_progress": _by_project(
            Replica.objects.filter(server_state=ServerState.IN_PROGRESS, project_id__in=project_ids)
        ),
        "need_validate": _by_project(
            WorkUnit.objects.filter(need_validate=True, project_id__in=project_ids)
        ),
        "assimilate_ready": _by_project(
            WorkUnit.objects.filter(
                assimilate_state=AssimilateState.READY, project_id__in=project_ids
            )
        ),
    }


def throughput(project_ids: list[int], since: datetime) -> dict[str, dict[int, Any]]:
    received = Replica.objects.filter(received_at__gte=since, project_id__in=project_ids)
    assimilated = WorkUnit.objects.filter(assimilated_at__gte=since, project_id__in=project_ids)
    return {
        "received": _by_project(received),
        "replica_errors": _by_project(
            received.filter(outcome__in=[Outcome.CLIENT_ERROR, Outcome.VALIDATE_ERROR])
        ),
        "hosts_reporting": _by_project(received, Count("host_id", distinct=True)),
        "validated": _by_project(
            WorkUnit.objects.filter(validated_at__gte=since, project_id__in=project_ids)
        ),
        "assimilated": _by_project(assimilated.filter(error_mask=0)),
        # A cancelled work unit carries the cancelled bit alone (cancelling only applies
        # to work units without an error), so it is excluded by equality.
        "failed_workunits": _by_project(
            assimilated.filter(error_mask__gt=0).exclude(error_mask=int(ErrorMask.CANCELLED))
        ),
        "credit": _by_project(
            CreditEntry.objects.filter(granted_at__gte=since, project_id__in=project_ids),
            Sum("amount"),
        ),
    }


def hosts_active(since: datetime) -> int:
    """Hosts seen by the server, or that returned a replica (of any project), since ``since``.

    ``Host.last_seen`` has no index, so this reads the host table once; the replicas come
    from the ``replica_received_at`` index."""
    returned = Replica.objects.filter(received_at__gte=since).values("host_id")
    return Host.objects.filter(Q(last_seen__gte=since) | Q(id__in=returned)).count()


def grid_status(
    projects: Iterable[Project] | None = None, now: datetime | None = None
) -> GridStatus:
    """Queue depths now and throughput over the last hour, for ``projects`` (default: all)."""
    now = now or timezone.now()
    since = now - WINDOW
    if projects is None:
        projects = Project.objects.order_by("name")
    rows = [
        ProjectStatus(id=p.id, slug=p.slug, name=p.name, is_active=p.is_active) for p in projects
    ]
    ids = [p.id for p in rows]
    if ids:
        numbers = {**queue_depths(ids), **throughput(ids, since)}
        for row in rows:
            for name, per_project in numbers.items():
                value = per_project.get(row.id)
                if value is not None:
                    setattr(row, name, value)
    return GridStatus(now=now, since=since, projects=rows, hosts_active=hosts_active(since))
