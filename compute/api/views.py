"""The owner's pages: API tokens, the list of one's projects and a project's dashboard."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compute.api import charts, owner_stats
from compute.api.access import owned_batch, owned_project, owned_projects
from compute.api.downloads import results_response
from compute.api.models import ApiToken
from compute.api.projects import may_create_projects
from compute.api.tokens import MAX_ACTIVE, NAME_MAX, issue_token, revoke_token
from compute.states import BatchState
from compute.stats import results_since
from socialgrid.ratelimit import ratelimit

NEW_KEY = "owners.new_api_key"  # session key: the key just made, shown once


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit("api-token", 20, 3600)
def tokens(request: HttpRequest) -> HttpResponse:
    error = ""
    name = ""
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            issued = issue_token(request.user, name)
        except ValidationError as e:
            error = " ".join(e.messages)
        else:
            # Through the session and a redirect: a reload shows the list, not a new key.
            request.session[NEW_KEY] = {"id": issued.token.id, "key": issued.key}
            return redirect("owners:tokens")
    new = request.session.pop(NEW_KEY, None)
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "new_key": new["key"] if new else "",
        "new_id": new["id"] if new else None,
        "error": error,
        "name": name,
        "name_max": NAME_MAX,
        "max_active": MAX_ACTIVE,
        "may_create": may_create_projects(request.user),
    }
    return render(request, "owners/tokens.html", context, status=400 if error else 200)


@login_required
@require_POST
def revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if revoke_token(request.user, token_id):
        messages.success(request, "The token is revoked: requests with it are refused from now on.")
    else:
        messages.error(request, "No such active token.")
    return redirect("owners:tokens")


@login_required
@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    projects = list(
        owned_projects(request.user)
        .annotate(
            n_apps=Count("apps", distinct=True),
            n_running=Count(
                "batches", filter=Q(batches__state=BatchState.IN_PROGRESS), distinct=True
            ),
        )
        .order_by("name")
    )
    recent = results_since([p.id for p in projects], now - timedelta(hours=1))
    for project in projects:
        project.results_last_hour = recent.get(project.id, 0)
    context = {"projects": projects, "may_create": may_create_projects(request.user)}
    return render(request, "owners/projects.html", context)


def _live_context(project) -> dict:
    board = owner_stats.project_dashboard(project)
    return {
        "project": project,
        "board": board,
        "results_chart": charts.results_chart(board.minutes),
        "hosts_chart": charts.hosts_chart(board.minutes),
        "outcomes": charts.outcome_shares(board.outcomes),
    }


@login_required
@require_GET
def project_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    project = owned_project(request.user, slug)
    context = {**_live_context(project), "apps": project.apps.order_by("name")}
    return render(request, "owners/project.html", context)


@login_required
@require_GET
def project_live(request: HttpRequest, slug: str) -> HttpResponse:
    """The dashboard's live part alone, fetched every few seconds by owners.js."""
    project = owned_project(request.user, slug)
    response = render(request, "owners/includes/live.html", _live_context(project))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def batch_results(request: HttpRequest, batch_id: int, fmt: str) -> StreamingHttpResponse:
    return results_response(owned_batch(request.user, batch_id), fmt)
