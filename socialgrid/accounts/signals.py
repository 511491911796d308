from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from allauth.socialaccount.signals import social_account_added

from socialgrid.accounts.models import Profile


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created: bool, **kwargs) -> None:
    if created:
        Profile.objects.get_or_create(user=instance)


@receiver(social_account_added)
def fill_profile_on_connect(sender, request, sociallogin, **kwargs) -> None:
    """Connecting a provider to an existing account fills the profile's empty fields only."""
    from socialgrid.accounts.adapter import fill_profile_from_sociallogin

    fill_profile_from_sociallogin(sociallogin)
