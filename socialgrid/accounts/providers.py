"""Sign-in providers (Facebook, Google, GitHub and one generic OpenID Connect server), configured
only from the environment.

``socialaccount_settings(os.environ)`` returns the provider apps to install and the
``SOCIALACCOUNT_PROVIDERS`` setting. All four provider apps are always installed, so their URLs
exist and tests can configure a provider with a settings override; a provider whose
credentials are not set has no ``APPS`` entry, so allauth lists no button for it and its URLs
answer 404 (see ``adapter.SocialAccountAdapter.get_app``). Providers live in settings only,
never also as database ``SocialApp`` rows: allauth would find two apps for one client id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

PROVIDER_APPS = [
    "allauth.socialaccount.providers.facebook",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.openid_connect",
]

# Only what the profile needs: no gender, locale or friends list (each would also need
# Facebook's app review). The large picture is 200 px, enough for the profile page.
FACEBOOK_FIELDS = ["id", "email", "name", "first_name", "last_name", "picture.type(large)"]

OIDC_PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def socialaccount_settings(environ: Mapping[str, str]) -> tuple[list[str], dict[str, Any]]:
    """(provider apps for INSTALLED_APPS, SOCIALACCOUNT_PROVIDERS) from ``environ``."""
    providers: dict[str, Any] = {}
    if app := _oauth_app(environ, "FACEBOOK"):
        providers["facebook"] = {
            # The JavaScript SDK would load Facebook's script on our pages; the redirect
            # flow needs none.
            "METHOD": "oauth2",
            "SCOPE": ["email", "public_profile"],
            "FIELDS": FACEBOOK_FIELDS,
            "APPS": [app],
        }
    if app := _oauth_app(environ, "GOOGLE"):
        providers["google"] = {
            "SCOPE": ["profile", "email"],
            "AUTH_PARAMS": {"access_type": "online"},
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [app],
        }
    if app := _oauth_app(environ, "GITHUB"):
        providers["github"] = {"SCOPE": ["read:user", "user:email"], "APPS": [app]}
    if app := _oidc_app(environ):
        providers["openid_connect"] = {"OAUTH_PKCE_ENABLED": True, "APPS": [app]}
    return list(PROVIDER_APPS), providers


def _value(environ: Mapping[str, str], name: str) -> str:
    """A variable's value, or the contents of the file named by NAME_FILE (for secrets)."""
    path = environ.get(f"{name}_FILE", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {e}") from e
    return environ.get(name, "").strip()


def _credentials(environ: Mapping[str, str], prefix: str) -> tuple[str, str] | None:
    client_id = _value(environ, f"{prefix}_CLIENT_ID")
    secret = _value(environ, f"{prefix}_SECRET")
    if not client_id and not secret:
        return None
    # Half a configuration is a deployment mistake: say which half is missing rather than
    # silently showing no button.
    if not client_id:
        raise ImproperlyConfigured(f"{prefix}_SECRET is set but {prefix}_CLIENT_ID is not")
    if not secret:
        raise ImproperlyConfigured(f"{prefix}_CLIENT_ID is set but {prefix}_SECRET is not")
    return client_id, secret


def _oauth_app(environ: Mapping[str, str], prefix: str) -> dict[str, Any] | None:
    credentials = _credentials(environ, prefix)
    if credentials is None:
        return None
    client_id, secret = credentials
    return {"client_id": client_id, "secret": secret, "key": ""}


def _oidc_app(environ: Mapping[str, str]) -> dict[str, Any] | None:
    credentials = _credentials(environ, "OIDC")
    if credentials is None:
        return None
    client_id, secret = credentials
    provider_id = _value(environ, "OIDC_PROVIDER_ID") or "oidc"
    if not OIDC_PROVIDER_ID.match(provider_id):
        raise ImproperlyConfigured(
            "OIDC_PROVIDER_ID must be 1-40 lowercase letters, digits, '-' or '_' "
            f"(it appears in URLs), not {provider_id!r}"
        )
    server_url = _value(environ, "OIDC_SERVER_URL")
    if not server_url:
        raise ImproperlyConfigured("OIDC_CLIENT_ID is set but OIDC_SERVER_URL is not")
    parts = urlsplit(server_url)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise ImproperlyConfigured(
            f"OIDC_SERVER_URL must be an https:// (or http://) URL, not {server_url!r}"
        )
    return {
        "provider_id": provider_id,
        "name": _value(environ, "OIDC_NAME") or "OpenID Connect",
        "client_id": client_id,
        "secret": secret,
        "settings": {"server_url": server_url},
    }
