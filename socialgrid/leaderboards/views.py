from __future__ import annotations

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from compute.models import Project
from socialgrid.leaderboards import links
from socialgrid.leaderboards.boards import Board, Metric, Period, Subject, make_board
from socialgrid.leaderboards.pages import leaderboard_page

MAX_PAGE = 1_000_000
SHARE_DESCRIPTION = "Volunteers computing for science in their browsers, ranked by credit."


class BoardForm(forms.Form):
    board = forms.ChoiceField(choices=Subject.choices, required=False)
    metric = forms.ChoiceField(choices=Metric.choices, required=False)
    period = forms.ChoiceField(choices=Period.choices, required=False)
    project = forms.SlugField(required=False)
    page = forms.IntegerField(min_value=1, max_value=MAX_PAGE, required=False)


def describe(board: Board, project: Project | None) -> str:
    """The board in words, e.g. "Volunteers by total credit this week in Mandelbrot"."""
    words = f"{Subject(board.subject).label} by {Metric(board.metric).label.lower()}"
    if board.period != Period.ALL:
        words += f" {Period(board.period).label.lower()}"
    if project is not None:
        words += f" in {project.name}"
    return words


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    form = BoardForm(request.GET)
    if not form.is_valid():
        return render(request, "leaderboards/index.html", {"form": form}, status=400)
    data = form.cleaned_data
    project = None
    if data["project"]:
        project = Project.objects.filter(slug=data["project"], is_public=True).first()
        if project is None:
            raise Http404("No such project")
    board, notes = make_board(
        data["board"] or Subject.USERS,
        data["metric"] or Metric.TOTAL,
        data["period"] or Period.ALL,
        project.id if project else None,
        now=timezone.now(),
    )
    if board.project_id is None:
        project = None
    page = leaderboard_page(board, data["page"] or 1, request.user)
    slug = project.slug if project else ""
    heading = describe(board, project)
    context = {
        "board": board,
        "page": page,
        "project": project,
        "projects": Project.objects.filter(is_public=True).only("slug", "name").order_by("name"),
        "notes": notes,
        "heading": heading,
        "subject_links": links.subject_links(board, slug),
        "metric_links": links.metric_links(board, slug),
        "period_links": links.period_links(board, slug),
        "has_projects": board.subject in (Subject.USERS, Subject.FRIENDS),
        "first_url": links.page_url(board, slug, 1),
        "previous_url": links.page_url(board, slug, page.number - 1),
        "next_url": links.page_url(board, slug, page.number + 1),
        "last_url": links.page_url(board, slug, page.page_count),
        "mine_url": links.page_url(board, slug, page.mine_page) if page.mine else "",
        "mine_on_page": any(row.is_mine for row in page.rows),
        "share_title": f"socialgrid leaderboard: {heading}",
        "share_description": SHARE_DESCRIPTION,
        "share_url": request.build_absolute_uri(),
        "share_image": "",
    }
    return render(request, "leaderboards/index.html", context)
