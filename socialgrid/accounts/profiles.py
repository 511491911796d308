"""The rules for what a profile may hold, shared by the edit form and the sign-up adapter.

Text is normalised before it is stored: control characters and the invisible bidirectional
overrides (which can make a name render as someone else's) are dropped and runs of whitespace
collapse. Avatars are plain http(s) URLs on a public host, without credentials; anything else
is refused, and ``Profile.public_avatar_url`` checks the scheme again when rendering.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from socialgrid.accounts.models import ANONYMOUS_PREFIX, Profile, is_web_url

DISPLAY_NAME_MAX = Profile._meta.get_field("display_name").max_length
AVATAR_URL_MAX = Profile._meta.get_field("avatar_url").max_length
BIO_MAX = Profile._meta.get_field("bio").max_length

# Bidi embeddings/overrides/isolates and the BOM: invisible, and able to reorder what follows.
_INVISIBLE = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0xFEFF])
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")
_SPACES = re.compile(r"\s+")
_validate_url = URLValidator(schemes=["http", "https"])


def normalize_line(value: str) -> str:
    """One line of text: no control characters, single spaces, trimmed."""
    value = unicodedata.normalize("NFC", value).translate(_INVISIBLE)
    value = "".join(" " if unicodedata.category(c) == "Cc" else c for c in value)
    return _SPACES.sub(" ", value).strip()


def normalize_text(value: str) -> str:
    """Several lines (a bio): line breaks kept (at most one blank line), other controls gone."""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    lines = [normalize_line(line) for line in value.translate(_INVISIBLE).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def display_name_error(name: str) -> str | None:
    """Why a (normalised) display name is not acceptable, or None."""
    if len(name) > DISPLAY_NAME_MAX:
        return f"Use at most {DISPLAY_NAME_MAX} characters."
    # "Anonymous volunteer #12" is what the anonymous look like; a name must not pose as one.
    if name.casefold().startswith(ANONYMOUS_PREFIX.casefold()):
        return f"Names starting with “{ANONYMOUS_PREFIX}” are reserved."
    return None


def avatar_url_error(url: str) -> str | None:
    """Why an avatar URL is not acceptable, or None (the empty string is acceptable)."""
    if not url:
        return None
    if len(url) > AVATAR_URL_MAX:
        return f"Use a URL of at most {AVATAR_URL_MAX} characters."
    if not is_web_url(url):
        return "Use an address starting with https:// (or http://)."
    try:
        _validate_url(url)
    except ValidationError:
        return "Enter a valid web address."
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "The address must not contain a user name or password."
    if not _is_public_host(parts.hostname or ""):
        return "Use the address of a public web site."
    return None


def _is_public_host(host: str) -> bool:
    """A host name on the public web. Every visitor's browser fetches the avatar, so an
    address on their own machine or network (a router's admin page) must not be one."""
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return False  # public sites have names; IP literals are mostly private addresses
    return "." in host and not host.endswith(_PRIVATE_SUFFIXES)


def clean_display_name(raw: str) -> str:
    """A provider's name made acceptable, or "" (the adapter never fails a sign-up over it)."""
    name = normalize_line(raw)[:DISPLAY_NAME_MAX].strip()
    return "" if display_name_error(name) else name


def clean_avatar_url(raw: str) -> str:
    url = raw.strip()
    return "" if avatar_url_error(url) else url
