"""What the public pages show: the project cards of the home page and a project's page.

Only public projects appear. The home page costs four queries whatever the number of
projects: the projects with their volunteer count and current batch id, the results of the
last 24 hours grouped by project, the current batches by id, and the distinct volunteers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from compute import hosts, pictures, stats
from compute.models import Batch, Membership, Project, Replica
from compute.states import BatchState, MembershipState, ServerState

TOP_CONTRIBUTORS = 10
BATCHES_SHOWN = 10


def public_projects() -> QuerySet[Project]:
    return Project.objects.filter(is_public=True)


OFFERS = 3


def volunteer_credit(user) -> float:
    """A signed-in volunteer's total credit: what their panel shows beside Start."""
    if user is None or not user.is_authenticated:
        return 0.0
    return hosts.user_total(user)


def projects_with_work(but: str | None = None, limit: int = OFFERS) -> list[Project]:
    """Public, active projects with work waiting to be sent right now: what a volunteer
    whose project ran dry is offered instead. Each is one index probe (the unsent replicas'
    partial index, by app)."""
    waiting = Replica.objects.filter(
        server_state=ServerState.UNSENT, app__project_id=OuterRef("pk")
    )
    projects = public_projects().filter(Exists(waiting), is_active=True)
    if but:
        projects = projects.exclude(slug=but)
    return list(projects.order_by("-rac", "name")[:limit])


@dataclass(frozen=True)
class ProjectCard:
    project: Project
    volunteers: int
    results_24h: int
    batch: Batch | None


@dataclass(frozen=True)
class HomePage:
    cards: list[ProjectCard]
    volunteers: int  # distinct active members of public projects
    results_24h: int

    @property
    def n_projects(self) -> int:
        return len(self.cards)


def home_page(now: datetime | None = None) -> HomePage:
    cards = project_cards(now)
    volunteers = (
        Membership.objects.filter(project__is_public=True, state=MembershipState.ACTIVE)
        .values("user_id")
        .distinct()
        .count()
    )
    return HomePage(
        cards=cards,
        volunteers=volunteers,
        results_24h=sum(card.results_24h for card in cards),
    )


def project_cards(now: datetime | None = None) -> list[ProjectCard]:
    now = now or timezone.now()
    projects = list(
        public_projects()
        .annotate(
            n_volunteers=Count("memberships", filter=Q(memberships__state=MembershipState.ACTIVE)),
            current_batch_id=stats.current_batch_subquery(),
        )
        .order_by("name")
    )
    if not projects:
        return []
    results = stats.results_since([p.id for p in projects], now - stats.RESULTS_WINDOW)
    batches = Batch.objects.in_bulk([p.current_batch_id for p in projects if p.current_batch_id])
    return [
        ProjectCard(
            project=p,
            volunteers=p.n_volunteers,
            results_24h=results.get(p.id, 0),
            batch=batches.get(p.current_batch_id),
        )
        for p in projects
    ]


@dataclass(frozen=True)
class ProjectPage:
    project: Project
    stats: stats.ProjectStats
    batch: Batch | None
    batches: list[Batch]
    top_contributors: list[Membership]
    picture_batch: Batch | None
    membership: Membership | None = None
    user_credit: float = 0.0  # the signed-in volunteer's total, as their panel shows it

    @property
    def has_picture(self) -> bool:
        return self.picture_batch is not None


def project_page(project: Project, user=None, now: datetime | None = None) -> ProjectPage:
    now = now or timezone.now()
    current = stats.current_batch(project)
    in_progress = list(
        project.batches.filter(state=BatchState.IN_PROGRESS).order_by("-created_at", "-id")[
            :BATCHES_SHOWN
        ]
    )
    top = list(
        Membership.objects.filter(project=project, total_credit__gt=0)
        # Banned volunteers leave every public list; names follow each one's privacy choice.
        .exclude(user__volunteer__banned=True)
        .select_related("user", "user__profile")
        .order_by("-total_credit", "id")[:TOP_CONTRIBUTORS]
    )
    membership, user_credit = None, 0.0
    if user is not None and user.is_authenticated:
        membership = Membership.objects.filter(user=user, project=project).first()
        user_credit = volunteer_credit(user)
    return ProjectPage(
        project=project,
        stats=stats.project_stats(project, now),
        batch=current,
        batches=in_progress,
        top_contributors=top,
        picture_batch=pictures.picture_batch(project),
        membership=membership,
        user_credit=user_credit,
    )
