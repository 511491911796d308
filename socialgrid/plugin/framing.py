"""Who may put the plugin's pages in a frame.

The site as a whole refuses to be framed (``X_FRAME_OPTIONS = "DENY"``). The plugin pages
under /embed/ are the exception: they skip X-Frame-Options and send
``Content-Security-Policy: frame-ancestors <sources>`` instead, which browsers obey in its
place (CSP wins where both are present, and X-Frame-Options cannot name several sites).

``EMBED_ALLOWED_ORIGINS`` (a list of origins, from the environment variable of that name):

- unset, or containing ``*``: any web page may embed the plugin (the product wants people
  to put it everywhere);
- a list of origins such as ``https://blog.example.org`` (``https://*.example.org`` for every
  subdomain): only those pages, and this site itself;
- set but empty: only this site.

The Facebook canvas page is framed by Facebook only, whatever that setting says.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.views.decorators.clickjacking import xframe_options_exempt

ANY = "*"
SELF = "'self'"
FACEBOOK_ANCESTORS = ("https://www.facebook.com", "https://apps.facebook.com")

# scheme://host[:port], the host optionally "*." + a domain. Nothing else may reach the header:
# a space, ";" or "," in an origin would add sources or whole directives.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
ORIGIN = re.compile(rf"^https?://(?:\*\.)?{_LABEL}(?:\.{_LABEL})*(?::\d{{1,5}})?$")


def normalize_origin(value: str) -> str:
    """``value`` as a CSP source (lower case, no trailing slash), or ValueError."""
    origin = value.strip().rstrip("/").lower()
    if not ORIGIN.match(origin):
        raise ValueError(
            f"{value!r} is not an origin like https://blog.example.org "
            "(scheme and host, optionally a port; no path)"
        )
    return origin


def parse_allowed_origins(values: Iterable[str]) -> tuple[str, ...]:
    """The frame-ancestors sources for a configured list of origins (see the module doc)."""
    values = [v.strip() for v in values if v.strip()]
    if ANY in values:
        return (ANY,)
    sources = [SELF]
    for value in values:
        try:
            origin = normalize_origin(value)
        except ValueError as e:
            raise ImproperlyConfigured(f"EMBED_ALLOWED_ORIGINS: {e}") from e
        if origin not in sources:
            sources.append(origin)
    return tuple(sources)


def embed_ancestors() -> tuple[str, ...]:
    """Who may frame the /embed/ pages, from ``settings.EMBED_ALLOWED_ORIGINS``."""
    configured = getattr(settings, "EMBED_ALLOWED_ORIGINS", [ANY])
    if isinstance(configured, str):
        configured = configured.split(",")
    return parse_allowed_origins(configured)


def facebook_ancestors() -> tuple[str, ...]:
    return FACEBOOK_ANCESTORS


def frame_ancestors(sources: Sequence[str]) -> str:
    return "frame-ancestors " + " ".join(sources)


def frameable_by(sources: Callable[[], Sequence[str]]) -> Callable:
    """Decorate a view whose responses ``sources()`` may frame (and nobody else)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(*args, **kwargs) -> HttpResponse:
            response = view(*args, **kwargs)
            response["Content-Security-Policy"] = frame_ancestors(sources())
            return response

        return xframe_options_exempt(wrapper)

    return decorate
