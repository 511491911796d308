"""socialgrid's allauth adapter (settings: SOCIALACCOUNT_ADAPTER).

allauth already carries ``next`` through a social sign-in: the login view stores it in the
OAuth state and the callback redirects there, for new and returning users alike, so a
volunteer who signs up from an invite link or a project page lands back on it. The adapter
adds what is ours: a new volunteer's profile starts with the name and picture their provider
gave, and a provider without credentials answers 404 instead of failing.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin

from socialgrid.accounts.models import Profile
from socialgrid.accounts.social import fill_profile, read_identity


class ProviderNotConfigured(SocialApp.DoesNotExist, Http404):
    """No credentials for this provider in the environment.

    Still a ``SocialApp.DoesNotExist`` for allauth code that catches it (the OpenID Connect
    views turn it into a 404 themselves), and a 404 wherever it is not caught (the Facebook,
    Google and GitHub views would otherwise fail with a server error)."""


def provider_class_id(sociallogin: SocialLogin) -> str:
    """The provider's class id: ``openid_connect`` for any OIDC server, whose accounts carry
    the server's own id (e.g. ``keycloak``) in ``SocialAccount.provider``."""
    provider = sociallogin.provider or sociallogin.account.get_provider()
    return provider.id


def fill_profile_from_sociallogin(sociallogin: SocialLogin) -> list[str]:
    user = sociallogin.user
    profile, _ = Profile.objects.get_or_create(user=user)
    identity = read_identity(provider_class_id(sociallogin), sociallogin.account.extra_data)
    return fill_profile(profile, identity)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form=None):
        # Both sign-up paths end here: automatic sign-up, and the form allauth shows when the
        # provider's e-mail address is already taken or missing.
        user = super().save_user(request, sociallogin, form=form)
        fill_profile_from_sociallogin(sociallogin)
        return user

    def get_app(self, request: HttpRequest, provider, client_id=None):
        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist as e:
            raise ProviderNotConfigured(f"sign-in with {provider} is not configured") from e
