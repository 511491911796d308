"""The numbers of a project owner's dashboard.

- **results per minute** over the last hour: replicas of the project received in each
  minute, split into results (outcome success) and errors (client or validation errors), and
  the number of distinct hosts that returned something in that minute. One query grouped by
  the minute (``Trunc`` of ``received_at``) over the ``replica_received_at`` index.
- **volunteers online**: :func:`compute.stats.volunteers_online`, as on the public page.
- **validation outcomes** of the replicas received in the last 24 hours: valid, invalid,
  inconclusive, error (the host reported an error, or the output failed validation), and
  pending (returned, not validated yet). One grouped query over the same index.
- **queue**: replicas waiting to be sent (over the partial ``replica_unsent`` index, as
  :mod:`compute.dashboard` counts them) and in progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import Trunc
from django.utils import timezone

from compute.dashboard import unsent_by_project
from compute.models import Batch, Project, Replica
from compute.states import Outcome, ServerState, ValidateState
from compute.stats import volunteers_online

MINUTES = 60
OUTCOME_WINDOW = timedelta(hours=24)
ERRORS = (Outcome.CLIENT_ERROR, Outcome.VALIDATE_ERROR)
OUTCOMES = ("valid", "invalid", "inconclusive", "error", "pending")
RECENT_BATCHES = 20


@dataclass(frozen=True)
class Minute:
    start: datetime
    results: int = 0
    errors: int = 0
    hosts: int = 0


@dataclass
class ProjectDashboard:
    now: datetime
    online: int
    minutes: list[Minute]
    outcomes: dict[str, int]
    unsent: int
    in_progress: int
    batches: list[Batch] = field(default_factory=list)
    more_batches: int = 0

    @property
    def results_last_hour(self) -> int:
        return sum(m.results for m in self.minutes)

    @property
    def errors_last_hour(self) -> int:
        return sum(m.errors for m in self.minutes)


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def results_per_minute(project: Project, now: datetime | None = None) -> list[Minute]:
    """The last ``MINUTES`` whole minutes and the current one so far, oldest first."""
    now = now or timezone.now()
    first = _minute(now) - timedelta(minutes=MINUTES - 1)
    rows = (
        Replica.objects.filter(project=project, received_at__gte=first, received_at__lte=now)
        .annotate(minute=Trunc("received_at", "minute", tzinfo=UTC))
        .order_by()
        .values("minute")
        .annotate(
            results=Count("id", filter=Q(outcome=Outcome.SUCCESS)),
            errors=Count("id", filter=Q(outcome__in=ERRORS)),
            hosts=Count("host_id", distinct=True),
        )
    )
    by_minute = {_minute(row["minute"]): row for row in rows}
    minutes = []
    for i in range(MINUTES):
        start = first + timedelta(minutes=i)
        row = by_minute.get(start)
        minutes.append(
            Minute(start, row["results"], row["errors"], row["hosts"]) if row else Minute(start)
        )
    return minutes


def validation_outcomes(project: Project, now: datetime | None = None) -> dict[str, int]:
    since = (now or timezone.now()) - OUTCOME_WINDOW
    counts = (
        Replica.objects.filter(project=project, received_at__gte=since)
        .order_by()
        .aggregate(
            valid=Count(
                "id", filter=Q(outcome=Outcome.SUCCESS, validate_state=ValidateState.VALID)
            ),
            invalid=Count(
                "id", filter=Q(outcome=Outcome.SUCCESS, validate_state=ValidateState.INVALID)
            ),
            inconclusive=Count(
                "id",
                filter=Q(outcome=Outcome.SUCCESS, validate_state=ValidateState.INCONCLUSIVE),
            ),
            error=Count("id", filter=Q(outcome__in=ERRORS)),
            pending=Count(
                "id", filter=Q(outcome=Outcome.SUCCESS, validate_state=ValidateState.INIT)
            ),
        )
    )
    return {name: counts[name] or 0 for name in OUTCOMES}


def recent_batches(project: Project) -> tuple[list[Batch], int]:
    """The newest batches (with their app) and how many older ones are not shown."""
    batches = Batch.objects.filter(project=project).select_related("app")
    shown = list(batches.order_by("-created_at", "-id")[:RECENT_BATCHES])
    more = batches.count() - len(shown) if len(shown) == RECENT_BATCHES else 0
    return shown, more


def project_dashboard(project: Project, now: datetime | None = None) -> ProjectDashboard:
    now = now or timezone.now()
    batches, more = recent_batches(project)
    return ProjectDashboard(
        now=now,
        online=volunteers_online(project, now),
        minutes=results_per_minute(project, now),
        outcomes=validation_outcomes(project, now),
        unsent=unsent_by_project([project.id]).get(project.id, 0),
        in_progress=Replica.objects.filter(
            project=project, server_state=ServerState.IN_PROGRESS
        ).count(),
        batches=batches,
        more_batches=more,
    )
