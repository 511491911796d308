"""Invitation e-mails: one message per address, within a per-sender daily limit.

The limit is a rolling 24 hours counted from the InviteEmail log, checked and written in
one transaction that holds the sender's row, so two quick submissions cannot both use the
last allowance. Each address gets its own message, so recipients never see each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from compute.models import Project
from socialgrid.friends.friendships import is_banned
from socialgrid.invites.codes import inviter_name
from socialgrid.invites.models import InviteCode, InviteEmail

DEFAULT_EMAILS_PER_DAY = 20
MAX_ADDRESSES_PER_SEND = 10
DAY = timedelta(days=1)


class InviteRefused(Exception):
    """The invitations were not sent; the message is meant for the user."""


def emails_per_day() -> int:
    return getattr(settings, "INVITES_EMAILS_PER_DAY", DEFAULT_EMAILS_PER_DAY)


def emails_left_today(sender: AbstractBaseUser, now: datetime | None = None) -> int:
    now = now or timezone.now()
    sent = InviteEmail.objects.filter(sender=sender, sent_at__gt=now - DAY).count()
    return max(0, emails_per_day() - sent)


def _one_line(text: str) -> str:
    # A display name is user input; a subject with a line break would be refused by
    # Django's header check (and must never reach the headers anyway).
    return " ".join(text.split())


def invite_subject(sender: AbstractBaseUser, project: Project | None) -> str:
    name = _one_line(inviter_name(sender))
    if project is None:
        return f"{name} invites you to compute on socialgrid"
    return f"{name} invites you to compute for {_one_line(project.name)}"


def build_message(
    sender: AbstractBaseUser, address: str, link: str, message: str, project: Project | None
) -> EmailMultiAlternatives:
    context = {
        "inviter_name": inviter_name(sender),
        "project": project,
        "link": link,
        "message": message,
    }
    email = EmailMultiAlternatives(
        subject=invite_subject(sender, project),
        body=render_to_string("invites/email/invite.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    email.attach_alternative(render_to_string("invites/email/invite.html", context), "text/html")
    return email


def send_invite_emails(
    sender: AbstractBaseUser,
    addresses: list[str],
    *,
    invite: InviteCode,
    link: str,
    message: str = "",
    project: Project | None = None,
    now: datetime | None = None,
) -> int:
    """Send one invitation per address, or none at all (raises InviteRefused)."""
    now = now or timezone.now()
    if not addresses:
        raise InviteRefused("Enter at least one e-mail address.")
    if len(addresses) > MAX_ADDRESSES_PER_SEND:
        raise InviteRefused(f"Send to at most {MAX_ADDRESSES_PER_SEND} addresses at a time.")
    if is_banned(sender):
        raise InviteRefused("Your account can't send invitations.")
    messages = [build_message(sender, a, link, message, project) for a in addresses]
    with transaction.atomic():
        # Serialises one sender's submissions (SQLite serialises all writers anyway).
        list(get_user_model().objects.select_for_update().filter(pk=sender.pk).values("pk"))
        left = emails_left_today(sender, now)
        if len(addresses) > left:
            if left == 0:
                raise InviteRefused(
                    f"You have sent today's {emails_per_day()} invitations. "
                    "You can send more tomorrow."
                )
            raise InviteRefused(
                f"You can send {left} more invitation{'s' if left != 1 else ''} today; "
                f"you entered {len(addresses)} addresses."
            )
        InviteEmail.objects.bulk_create(
            [InviteEmail(sender=sender, invite_code=invite, sent_at=now) for _ in addresses]
        )
        # Inside the transaction: if the mail server refuses, the log rolls back and the
        # allowance is not spent. fail_silently=False so a failure is reported.
        return get_connection(fail_silently=False).send_messages(messages)
