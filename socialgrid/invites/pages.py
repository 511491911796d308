"""What the invite pages show: the "Invite friends" page and an invitation's landing page."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse

from compute import pictures, stats
from compute.models import Batch, Project
from compute.pages import volunteer_credit
from socialgrid.invites import emails
from socialgrid.invites.codes import (
    get_invite_code,
    invite_projects,
    inviter_avatar,
    inviter_name,
    landing_project,
)
from socialgrid.invites.models import InviteCode, Referral
from socialgrid.invites.referrals import RECRUIT_BADGE_LEVELS

RECRUITS_SHOWN = 50


@dataclass(frozen=True)
class InvitePage:
    invite: InviteCode
    link: str
    project: Project | None  # the project this link names, if any
    projects: list[Project]  # those one can make a link for
    share_title: str
    emails_left: int
    recruits: list[Referral]
    n_joined: int
    n_counted: int
    next_badge: int | None
    anonymous: bool


def invite_page(
    request: HttpRequest, user: AbstractBaseUser, project: Project | None
) -> InvitePage:
    invite = get_invite_code(user, project)
    link = request.build_absolute_uri(invite.get_absolute_url())
    totals = Referral.objects.filter(inviter=user).aggregate(
        joined=Count("id"), counted=Count("id", filter=Q(counted_at__isnull=False))
    )
    recruits = list(
        Referral.objects.filter(inviter=user)
        .select_related("recruit__profile", "project")
        .order_by("-created_at")[:RECRUITS_SHOWN]
    )
    shown = project or landing_project(invite)
    return InvitePage(
        invite=invite,
        link=link,
        project=project,
        projects=list(invite_projects().order_by("name").only("slug", "name")),
        share_title=(
            f"Compute for {shown.name} with me on socialgrid"
            if shown
            else "Compute with me on socialgrid"
        ),
        emails_left=emails.emails_left_today(user),
        recruits=recruits,
        n_joined=totals["joined"],
        n_counted=totals["counted"],
        next_badge=next((n for n in RECRUIT_BADGE_LEVELS if n > totals["counted"]), None),
        anonymous=user.profile.is_anonymous_choice,
    )


@dataclass(frozen=True)
class LandingPage:
    invite: InviteCode
    inviter_name: str
    inviter_avatar: str
    project: Project | None
    stats: stats.ProjectStats | None
    picture_batch: Batch | None
    next_url: str  # the project page: where sign-up and sign-in lead
    share_title: str
    share_description: str
    share_url: str
    share_image: str
    own_link: bool
    user_credit: float = 0.0  # a signed-in visitor's total, as the panel shows it


def landing_page(request: HttpRequest, invite: InviteCode) -> LandingPage:
    project = landing_project(invite)
    name = inviter_name(invite.user)
    picture = pictures.picture_batch(project) if project else None
    if project is not None:
        title = f"{name} invites you to compute for {project.name}"
        description = project.description or (
            f"Lend your browser's spare cycles to {project.name}: press Start on the project "
            "page, pause whenever you like. Nothing to install."
        )
        next_url = project.get_absolute_url()
    else:
        title = f"{name} invites you to compute on socialgrid"
        description = (
            "Volunteer computing in your browser: join a science project, press Start, "
            "pause whenever you like. Nothing to install."
        )
        next_url = reverse("compute:home")
    return LandingPage(
        invite=invite,
        inviter_name=name,
        inviter_avatar=inviter_avatar(invite.user),
        project=project,
        stats=stats.project_stats(project) if project else None,
        picture_batch=picture,
        next_url=next_url,
        share_title=title,
        share_description=description,
        share_url=request.build_absolute_uri(invite.get_absolute_url()),
        share_image=(
            request.build_absolute_uri(reverse("compute:project_picture", args=[project.slug]))
            if picture is not None
            else ""
        ),
        own_link=request.user.is_authenticated and request.user.pk == invite.user_id,
        user_credit=volunteer_credit(request.user),
    )
