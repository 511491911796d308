from __future__ import annotations

import logging
import smtplib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from compute.models import Project
from socialgrid.invites import emails
from socialgrid.invites.codes import (
    find_invite,
    get_invite_code,
    invite_projects,
    landing_project,
)
from socialgrid.invites.forms import InviteEmailForm
from socialgrid.invites.pages import invite_page, landing_page
from socialgrid.invites.referrals import remember_invite
from socialgrid.ratelimit import ratelimit

logger = logging.getLogger(__name__)


def _chosen_project(slug: str | None) -> Project | None:
    if not slug:
        return None
    return get_object_or_404(invite_projects(), slug=slug)


def _render_invite(
    request: HttpRequest, project: Project | None, form: InviteEmailForm, status: int = 200
) -> HttpResponse:
    page = invite_page(request, request.user, project)
    return render(request, "invites/invite.html", {"page": page, "form": form}, status=status)


@require_GET
@login_required
def invite(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own invite page; there is no way to ask for someone else's."""
    project = _chosen_project(request.GET.get("project"))
    form = InviteEmailForm(initial={"project": project.slug if project else ""})
    return _render_invite(request, project, form)


@require_POST
@login_required
@ratelimit("invites:email", limit=10, window=3600)
def send_email(request: HttpRequest) -> HttpResponse:
    form = InviteEmailForm(request.POST)
    if not form.is_valid():
        project = invite_projects().filter(slug=request.POST.get("project") or "").first()
        return _render_invite(request, project, form, status=400)
    project = _chosen_project(form.cleaned_data["project"])
    code = get_invite_code(request.user, project)
    addresses = form.cleaned_data["addresses"]
    try:
        sent = emails.send_invite_emails(
            request.user,
            addresses,
            invite=code,
            link=request.build_absolute_uri(code.get_absolute_url()),
            message=form.cleaned_data["message"],
            project=project or landing_project(code),
        )
    except emails.InviteRefused as e:
        form.add_error("addresses", str(e))
        return _render_invite(request, project, form, status=400)
    except (smtplib.SMTPException, OSError):
        logger.exception("sending invitations failed")
        form.add_error(None, "We couldn't send the invitations just now. Please try again later.")
        return _render_invite(request, project, form, status=503)
    messages.success(request, f"Invitation sent to {sent} address{'es' if sent != 1 else ''}.")
    target = reverse("invites:invite")
    if project is not None:
        target += f"?project={project.slug}"
    return HttpResponseRedirect(target)


@require_GET
def landing(request: HttpRequest, code: str) -> HttpResponse:
    invite = find_invite(code)
    if invite is None:
        raise Http404("This invitation link doesn't work any more.")
    page = landing_page(request, invite)
    response = render(request, "invites/landing.html", {"page": page})
    remember_invite(request, response, invite, page.project)
    return response
