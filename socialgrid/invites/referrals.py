"""Referrals: remembering an invitation, attributing a sign-up to it, and counting a recruit
once they return valid work.

A visitor who opens someone's invite link carries the code in their session and in a
signed cookie (which outlives the session: people often sign up days later). Only a new
account is attributed, once; signing in to an existing account never is, and nobody is
their own recruit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from compute.models import Project
from socialgrid.feed.models import Badge, BadgeKind, Verb
from socialgrid.feed.publishing import award, publish
from socialgrid.friends.friendships import befriend
from socialgrid.invites.codes import find_invite
from socialgrid.invites.models import InviteCode, Referral

logger = logging.getLogger(__name__)

SESSION_KEY = "socialgrid.invite"
COOKIE_NAME = "sg_invite"
COOKIE_SALT = "socialgrid.invite"
COOKIE_MAX_AGE = 30 * 86400
RECRUIT_BADGE_LEVELS = (1, 5, 10, 25, 50)


def remember_invite(
    request: HttpRequest, response: HttpResponse, invite: InviteCode, project: Project | None
) -> bool:
    """Keep the code for a later sign-up. Only for visitors who are signed out: a signed-in
    visitor already has an account, and an inviter opening their own link is not a recruit."""
    if request.user.is_authenticated:
        return False
    request.session[SESSION_KEY] = {"code": invite.code, "project": project.pk if project else None}
    response.set_signed_cookie(
        COOKIE_NAME,
        invite.code,
        salt=COOKIE_SALT,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return True


def remembered_invite(request: HttpRequest) -> tuple[str, int | None] | None:
    """The remembered (code, project id), from the session or else the cookie."""
    stored = request.session.get(SESSION_KEY)
    if isinstance(stored, dict) and isinstance(stored.get("code"), str):
        project = stored.get("project")
        return stored["code"], project if isinstance(project, int) else None
    code = request.get_signed_cookie(
        COOKIE_NAME, default=None, salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE
    )
    return (code, None) if code else None


def attribute_signup(request: HttpRequest | None, user: AbstractBaseUser) -> Referral | None:
    """Record who invited the newly signed-up ``user``, if a valid invitation is remembered."""
    if request is None:
        return None
    remembered = remembered_invite(request)
    if remembered is None:
        return None
    code, project_id = remembered
    request.session.pop(SESSION_KEY, None)
    invite = find_invite(code)
    if invite is None or invite.user_id == user.pk:
        return None
    if invite.project_id is not None:
        project_id = invite.project_id
    elif project_id is not None and not Project.objects.filter(pk=project_id).exists():
        project_id = None
    try:
        with transaction.atomic():
            return Referral.objects.create(
                recruit=user, inviter_id=invite.user_id, project_id=project_id, invite_code=invite
            )
    except IntegrityError:  # already attributed: one inviter per account
        return None


def count_recruits(user_ids: Iterable[int], now: datetime) -> list[Referral]:
    """Count the referrals of users who were just granted credit. Runs inside the granting
    transaction on every grant, so when none of them is an uncounted recruit it costs one
    query on a small partial index and nothing else."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return []
    waiting = list(
        Referral.objects.filter(recruit_id__in=ids, counted_at__isnull=True)
        # A banned inviter's recruits wait: they count if the ban is lifted.
        .exclude(inviter__volunteer__banned=True)
        .select_related("inviter__profile", "recruit__profile", "project")
        .order_by("inviter_id", "id")
    )
    counted = []
    inviters: dict[int, AbstractBaseUser] = {}
    for referral in waiting:
        # Conditional: two validations of one recruit's work may race; one of them counts.
        if Referral.objects.filter(pk=referral.pk, counted_at__isnull=True).update(counted_at=now):
            referral.counted_at = now
            _welcome(referral)
            counted.append(referral)
            inviters[referral.inviter_id] = referral.inviter
    # Badges once per inviter, after all of this grant's recruits are counted.
    for inviter in inviters.values():
        award_recruit_badges(inviter)
    return counted


def _welcome(referral: Referral) -> None:
    inviter, recruit = referral.inviter, referral.recruit
    befriend(inviter, recruit, now=referral.counted_at)
    # The id lets the feed show the recruit's current name; the name is a fallback.
    publish(
        inviter,
        Verb.RECRUITED,
        project=referral.project,
        recruit_id=recruit.pk,
        recruit=recruit.profile.public_name,
    )


def award_recruit_badges(inviter: AbstractBaseUser) -> list[int]:
    """Award every recruit badge the inviter's count has reached and they lack. Awarding
    all levels up to the count (not only the one equal to it) makes up for a level skipped
    when two recruits were counted in concurrent transactions."""
    n = Referral.objects.filter(inviter=inviter, counted_at__isnull=False).count()
    due = [level for level in RECRUIT_BADGE_LEVELS if level <= n]
    if not due:
        return []
    held = set(
        Badge.objects.filter(user=inviter, kind=BadgeKind.RECRUITS).values_list("level", flat=True)
    )
    missing = [level for level in due if level not in held]
    # Rungs reached together (several recruits counted at once) make one feed item: the top.
    return [
        level
        for level in missing
        if award(inviter, BadgeKind.RECRUITS, level, announce=level == missing[-1])
    ]
