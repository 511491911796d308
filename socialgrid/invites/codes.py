"""Invite codes: making them, finding them, and what a landing page says about them."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from compute.models import Membership, Project
from socialgrid.invites.models import InviteCode

# No 0/O, 1/l/I: a code read aloud or copied by hand survives. Letters and digits only, so
# chat apps that trim trailing punctuation from links keep the whole code.
ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10  # 56**10 ≈ 2**58: not guessable, still short in a URL
ANONYMOUS_INVITER = "A socialgrid volunteer"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def invite_projects() -> QuerySet[Project]:
    """Projects a landing page may send people to: public and handing out work."""
    return Project.objects.filter(is_public=True, is_active=True)


def get_invite_code(user: AbstractBaseUser, project: Project | None = None) -> InviteCode:
    """The user's code (for ``project``, or their personal one), made on first use."""
    for _ in range(5):
        existing = InviteCode.objects.filter(user=user, project=project).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                return InviteCode.objects.create(user=user, project=project, code=new_code())
        except IntegrityError:
            # Another request made this user's code first, or (rarely) the random code
            # is taken: look again, then try a fresh code.
            continue
    raise RuntimeError("could not make an invite code")


def find_invite(code: str) -> InviteCode | None:
    """The code's invite if its inviter may still invite (active, not banned)."""
    return (
        InviteCode.objects.filter(code=code, user__is_active=True)
        .exclude(user__volunteer__banned=True)
        .select_related("user__profile", "project")
        .first()
    )


def inviter_name(user: AbstractBaseUser) -> str:
    """How an invitation names its sender: their public name, unless they chose to appear
    anonymously ("Anonymous volunteer #12 invites you" helps nobody)."""
    profile = user.profile
    return ANONYMOUS_INVITER if profile.is_anonymous_choice else profile.public_name


def inviter_avatar(user: AbstractBaseUser) -> str:
    profile = user.profile
    return "" if profile.is_anonymous_choice else profile.public_avatar_url


def landing_project(invite: InviteCode) -> Project | None:
    """The project an invitation leads to: the one the code names, else the inviter's most
    active project (highest recent average credit), else the busiest project."""
    projects = invite_projects()
    if invite.project_id is not None and projects.filter(pk=invite.project_id).exists():
        return invite.project
    membership = (
        Membership.objects.filter(user_id=invite.user_id, project__in=projects)
        .select_related("project")
        .order_by("-rac", "-total_credit", "-joined_at")
        .first()
    )
    if membership is not None:
        return membership.project
    return projects.order_by("-rac", "-total_credit", "name").first()
