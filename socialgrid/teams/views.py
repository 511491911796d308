"""Team pages: each view checks who may act, calls one flow, and redirects or renders."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from socialgrid.ratelimit import hit, limited, ratelimit
from socialgrid.teams import membership, pages
from socialgrid.teams.forms import TeamEditForm, TeamForm
from socialgrid.teams.membership import TeamError
from socialgrid.teams.models import Team

# Founding a team publishes to friends' feeds and claims a name: cheap to abuse.
CREATE_LIMIT = (3, 3600)
# Joining and quitting publish too; generous for people who change their mind.
MEMBERSHIP_LIMIT = (20, 3600)


@require_GET
def team_list(request: HttpRequest) -> HttpResponse:
    page = pages.team_list_page(
        request.GET.get("q", ""), request.GET.get("sort", "total"), request.GET.get("page")
    )
    return render(request, "teams/list.html", {"page": page})


@login_required
@require_http_methods(["GET", "POST"])
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Counted once the form is valid, so fixing a typo does not use up the allowance.
        if not hit(f"teams:create:u{request.user.pk}", *CREATE_LIMIT):
            return limited(request, "You created teams too quickly; try again in an hour.")
        try:
            team = membership.create_team(request.user, **form.cleaned_data)
        except TeamError as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"You founded {team.name}.")
            return redirect(team)
    context = {
        "form": form,
        "current": membership.team_of(request.user),
        "banned": membership.is_banned(request.user),
    }
    return render(request, "teams/new.html", context)


@require_GET
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team.objects.select_related("founder__profile"), slug=slug)
    context = {
        "page": pages.team_page(team, request.user, request.GET.get("page")),
        "team": team,
        "banned": request.user.is_authenticated and membership.is_banned(request.user),
        "share_url": request.build_absolute_uri(team.get_absolute_url()),
        "share_description": team.description
        or f"{team.name} is a team of volunteers lending their browsers to science on socialgrid.",
    }
    return render(request, "teams/detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def team_edit(request: HttpRequest, slug: str) -> HttpResponse:
    team = _founded(request, slug)
    form = TeamEditForm(request.POST or None, instance=team)
    if request.method == "POST" and form.is_valid():
        try:
            membership.edit_team(
                team, request.user, form.cleaned_data["description"], form.cleaned_data["url"]
            )
        except TeamError as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, "Team details saved.")
            return redirect(team)
    return render(request, "teams/edit.html", {"form": form, "team": team})


@login_required
@require_POST
@ratelimit("teams:membership", *MEMBERSHIP_LIMIT)
def team_join(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    try:
        membership.join_team(request.user, team)
    except TeamError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Welcome to {team.name}!")
    return redirect(team)


@login_required
@require_POST
@ratelimit("teams:membership", *MEMBERSHIP_LIMIT)
def team_quit(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    try:
        membership.quit_team(request.user, team)
    except TeamError as e:
        messages.error(request, str(e))
        return redirect(team)
    messages.success(request, f"You left {team.name}.")
    # The team may be gone (it was deleted when its last member left).
    return redirect(team if Team.objects.filter(id=team.id).exists() else "teams:list")


@login_required
@require_POST
def team_transfer(request: HttpRequest, slug: str) -> HttpResponse:
    team = _founded(request, slug)
    to = _posted_user(request)
    try:
        membership.transfer_founder(team, request.user, to)
    except TeamError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"{to.profile.public_name} is now the founder of {team.name}.")
    return redirect(team)


@login_required
@require_POST
def team_remove(request: HttpRequest, slug: str) -> HttpResponse:
    team = _founded(request, slug)
    member = _posted_user(request)
    try:
        membership.remove_member(team, request.user, member)
    except TeamError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"{member.profile.public_name} is no longer in {team.name}.")
    return redirect(team)


def _founded(request: HttpRequest, slug: str) -> Team:
    """The team at ``slug``, if the signed-in user is its founder; 403 otherwise."""
    team = get_object_or_404(Team, slug=slug)
    if team.founder_id is None or team.founder_id != request.user.pk:
        raise PermissionDenied("Only the team's founder can do that.")
    return team


def _posted_user(request: HttpRequest):
    user_id = request.POST.get("user", "")
    users = get_user_model().objects.select_related("profile")
    return get_object_or_404(users, pk=int(user_id) if user_id.isdigit() else 0)
