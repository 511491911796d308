"""Join, pause, resume, finish-then-stop and leave a project (POST from the project page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from compute import memberships
from compute.models import Project

ACTIONS = {
    "join": (memberships.join, "You joined {name}. Press Start to compute."),
    "pause": (memberships.pause, "Paused: your browsers stop computing for {name}."),
    "resume": (memberships.resume, "Resumed: work for {name} flows again."),
    "finish": (
        memberships.finish_then_stop,
        "Your browsers finish their current work for {name}, then stop.",
    ),
    "leave": (memberships.leave, "You left {name}; the work you held goes to other volunteers."),
}


@require_POST
@login_required
def change_membership(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug, is_public=True)
    change, message = ACTIONS[action]
    change(request.user, project)
    messages.success(request, message.format(name=project.name))
    return redirect(project.get_absolute_url())
