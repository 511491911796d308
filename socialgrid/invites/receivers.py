"""The invites app's signal receivers (connected in InvitesConfig.ready)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.dispatch import receiver
from django.http import HttpRequest

from allauth.account.signals import user_signed_up

from compute.credit import Grant
from compute.signals import credit_claimed, credit_granted
from socialgrid.invites.referrals import attribute_signup, count_recruits


@receiver(user_signed_up, dispatch_uid="invites.attribute_signup")
def on_user_signed_up(
    sender, request: HttpRequest | None = None, user: AbstractBaseUser | None = None, **kwargs
) -> None:
    if user is not None:
        attribute_signup(request, user)


@receiver(credit_granted, dispatch_uid="invites.count_recruits")
def on_credit_granted(sender, grants: list[Grant], now: datetime, **kwargs) -> None:
    count_recruits((g.user_id for g in grants), now)


@receiver(credit_claimed, dispatch_uid="invites.count_claimed_recruits")
def on_credit_claimed(sender, user_id: int, now: datetime, **kwargs) -> None:
    """Work a recruit's browser did before they signed up counts once it is theirs."""
    count_recruits([user_id], now)
