"""Challenge pages: the list, one challenge's standings, and the founder's form."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from socialgrid.ratelimit import hit, limited
from socialgrid.teams import challenges, pages
from socialgrid.teams.forms import ChallengeForm
from socialgrid.teams.membership import TeamError
from socialgrid.teams.models import Challenge

CHALLENGE_LIMIT = (5, 3600)


@require_GET
def challenge_list(request: HttpRequest) -> HttpResponse:
    context = {
        "lists": pages.challenge_list(),
        "own_team": challenges.founded_team(request.user),
    }
    return render(request, "teams/challenge_list.html", context)


@require_GET
def challenge_detail(request: HttpRequest, slug: str) -> HttpResponse:
    challenge = get_object_or_404(
        Challenge.objects.select_related("created_by__profile"), slug=slug
    )
    standings = challenges.challenge_standings(challenge)
    context = {
        "challenge": challenge,
        "status": challenge.status(),
        "standings": standings,
        "share_description": challenge.description
        or f"{len(standings)} teams race to compute the most on socialgrid.",
        "share_url": request.build_absolute_uri(challenge.get_absolute_url()),
    }
    return render(request, "teams/challenge.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def challenge_new(request: HttpRequest) -> HttpResponse:
    own = challenges.founded_team(request.user)
    if own is None:
        return render(request, "teams/challenge_new.html", {"own_team": None}, status=403)
    if request.method == "POST":
        form = ChallengeForm(request.POST)
    else:
        start = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=1)
        initial = {
            "starts_at": start,
            "ends_at": start + timedelta(days=7),
            "teams": request.GET.get("invite", "")[:100],
        }
        form = ChallengeForm(initial=initial)
    if request.method == "POST" and form.is_valid():
        # Counted once the form is valid, so fixing a typo does not use up the allowance.
        if not hit(f"teams:challenge:u{request.user.pk}", *CHALLENGE_LIMIT):
            return limited(request, "You started challenges too quickly; try again in an hour.")
        data = form.cleaned_data
        try:
            challenge = challenges.create_challenge(
                request.user,
                name=data["name"],
                description=data["description"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                team_slugs=data["teams"],
            )
        except TeamError as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Challenge “{challenge.name}” created.")
            return redirect(challenge)
    return render(request, "teams/challenge_new.html", {"form": form, "own_team": own})
