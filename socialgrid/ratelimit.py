"""Rate limits for cheap-to-abuse actions (sign-in, invites, friend requests, API calls).

A fixed-window counter in Django's cache (Redis when the platform runs on services, so
every web process shares the counts; per process when embedded).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


def hit(key: str, limit: int, window: int) -> bool:
    """Count one event for ``key``; False once more than ``limit`` happened in the window."""
    bucket = int(time.time() // window)
    cache_key = f"rl:{key}:{bucket}"
    if cache.add(cache_key, 1, timeout=window + 1):
        return True
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window + 1)
        return True
    return count <= limit


def client_ip(request: HttpRequest) -> str:
    """The visitor's address; behind N trusted proxies, the Nth address from the right of
    X-Forwarded-For (the ones further left are the client's to forge)."""
    proxies = getattr(settings, "ALLAUTH_TRUSTED_PROXY_COUNT", 0)
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "unknown")


def limited(
    request: HttpRequest, message: str = "Too many requests; try again later."
) -> HttpResponse:
    body = render_to_string("ratelimited.html", {"message": message}, request=request)
    return HttpResponse(body, status=429)


def ratelimit(
    scope: str, limit: int, window: int, key: Callable[[HttpRequest], str] | None = None
) -> Callable:
    """Decorate a view: more than ``limit`` POSTs per ``window`` seconds per user (or IP) get
    429 and do nothing. GETs are not counted."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                who = (
                    key(request)
                    if key
                    else (
                        f"u{request.user.pk}"
                        if request.user.is_authenticated
                        else client_ip(request)
                    )
                )
                if not hit(f"{scope}:{who}", limit, window):
                    return limited(request)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
