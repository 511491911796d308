"""What the team pages show, in a fixed number of queries each."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from socialgrid.teams.models import Challenge, Team, TeamMember

TEAMS_PER_PAGE = 25
MEMBERS_PER_PAGE = 50
SORTS = {"total": ("-total_credit", "id"), "rac": ("-rac", "id")}


def visible_members(team: Team) -> QuerySet[TeamMember]:
    """A team's members as others see them: banned volunteers are left out."""
    return team.members.exclude(user__volunteer__banned=True)


def member_counts(team_ids: list[int]) -> dict[int, int]:
    return dict(
        TeamMember.objects.filter(team_id__in=team_ids)
        .exclude(user__volunteer__banned=True)
        .values("team_id")
        .annotate(n=Count("id"))
        .values_list("team_id", "n")
        .order_by()
    )


@dataclass
class TeamListPage:
    page: Page
    query: str
    sort: str
    counts: dict[int, int]

    @property
    def base_query(self) -> str:
        """The query string that keeps the search and sort across pages."""
        params = {"q": self.query} if self.query else {}
        return urlencode({**params, "sort": self.sort})

    @property
    def rows(self) -> list[tuple[int, Team, int]]:
        start = self.page.start_index()
        return [
            (start + i, team, self.counts.get(team.id, 0))
            for i, team in enumerate(self.page.object_list)
        ]


def team_list_page(query: str, sort: str, page_number: str | int | None) -> TeamListPage:
    query = query.strip()[:60]
    sort = sort if sort in SORTS else "total"
    teams = Team.objects.order_by(*SORTS[sort])
    if query:
        teams = teams.filter(Q(name__icontains=query) | Q(slug__icontains=query))
    page = Paginator(teams, TEAMS_PER_PAGE).get_page(page_number)
    counts = member_counts([t.id for t in page.object_list])
    return TeamListPage(page=page, query=query, sort=sort, counts=counts)


@dataclass
class TeamPage:
    team: Team
    members: Page
    n_members: int
    challenges: list[Challenge]
    # The viewer's relation to the team, for the buttons.
    is_member: bool = False
    is_founder: bool = False
    viewer_team: Team | None = None
    founder_must_transfer: bool = False


def team_page(team: Team, viewer, page_number: str | int | None) -> TeamPage:
    members = visible_members(team).select_related("user__profile").order_by("-credit", "id")
    page = Paginator(members, MEMBERS_PER_PAGE).get_page(page_number)
    challenges = list(team.challenges.order_by("-starts_at", "-id")[:10])
    result = TeamPage(
        team=team, members=page, n_members=page.paginator.count, challenges=challenges
    )
    if viewer.is_authenticated:
        own = TeamMember.objects.select_related("team").filter(user_id=viewer.pk).first()
        result.viewer_team = own.team if own else None
        result.is_member = own is not None and own.team_id == team.id
        result.is_founder = result.is_member and team.founder_id == viewer.pk
        if own is not None and own.team.founder_id == viewer.pk:
            # A founder with members can neither quit nor join elsewhere until they hand over.
            result.founder_must_transfer = own.team.members.exclude(user_id=viewer.pk).exists()
    return result


def challenge_list(now=None) -> dict[str, list[Challenge]]:
    """Running and upcoming challenges, and the most recently finished ones."""
    now = now or timezone.now()
    base = Challenge.objects.annotate(n_teams=Count("teams"))
    return {
        "running": list(base.filter(starts_at__lte=now, ends_at__gt=now).order_by("ends_at")[:50]),
        "upcoming": list(base.filter(starts_at__gt=now).order_by("starts_at")[:50]),
        "finished": list(base.filter(ends_at__lte=now).order_by("-ends_at")[:20]),
    }
