"""A new volunteer's display name and avatar, taken from what their sign-in provider sent.

Each provider names things differently: Facebook ``name`` and ``picture.data.url``; Google
``name`` and ``picture``; GitHub ``name`` (or ``login``) and ``avatar_url``; an OpenID Connect
server the standard claims ``name`` and ``picture`` (from the user-info response, else the ID
token). Values are cleaned the way the profile form cleans them, so a provider can never put
into a profile what the volunteer could not type themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from socialgrid.accounts.models import Profile
from socialgrid.accounts.profiles import clean_avatar_url, clean_display_name


@dataclass(frozen=True)
class SocialIdentity:
    name: str
    avatar_url: str


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _facebook(data: dict) -> SocialIdentity:
    picture = data.get("picture")
    url = ""
    # Facebook's grey silhouette is not a picture of anyone.
    if (
        isinstance(picture, dict)
        and isinstance(picture.get("data"), dict)
        and not picture["data"].get("is_silhouette")
    ):
        url = _text(picture["data"].get("url"))
    return SocialIdentity(_text(data.get("name")), url)


def _google(data: dict) -> SocialIdentity:
    return SocialIdentity(_text(data.get("name")), _text(data.get("picture")))


def _github(data: dict) -> SocialIdentity:
    name = _text(data.get("name")) or _text(data.get("login"))
    return SocialIdentity(name, _text(data.get("avatar_url")))


def _openid_connect(data: dict) -> SocialIdentity:
    # allauth stores {"userinfo": {...}, "id_token": {...}}; older rows hold the claims flat.
    claims: dict = {}
    for part in (data.get("id_token"), data.get("userinfo")):
        if isinstance(part, dict):
            claims.update({k: v for k, v in part.items() if v})
    if not claims:
        claims = data
    name = _text(claims.get("name")) or _text(claims.get("preferred_username"))
    return SocialIdentity(name, _text(claims.get("picture")))


READERS = {
    "facebook": _facebook,
    "google": _google,
    "github": _github,
    "openid_connect": _openid_connect,
}


def read_identity(provider_id: str, extra_data: Any) -> SocialIdentity:
    """The name and avatar in a provider's user data (empty strings for what is missing or
    unusable). ``provider_id`` is the provider class's id (``openid_connect`` for any OIDC
    server)."""
    reader = READERS.get(provider_id)
    if reader is None or not isinstance(extra_data, dict):
        return SocialIdentity("", "")
    raw = reader(extra_data)
    return SocialIdentity(clean_display_name(raw.name), clean_avatar_url(raw.avatar_url))


def fill_profile(profile: Profile, identity: SocialIdentity) -> list[str]:
    """Fill the profile's empty display name and avatar; never overwrite what the volunteer
    chose. Returns the fields that changed (already saved)."""
    changed = []
    if identity.name and not profile.display_name:
        profile.display_name = identity.name
        changed.append("display_name")
    if identity.avatar_url and not profile.avatar_url:
        profile.avatar_url = identity.avatar_url
        changed.append("avatar_url")
    if changed:
        profile.save(update_fields=changed)
    return changed
