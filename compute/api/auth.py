"""Authentication and rate limits of the API: ``Authorization: Bearer <key>`` only.

No session cookies: a request carries its key explicitly, so the API needs no CSRF token and
a page of this site cannot be tricked into calling it with a visitor's session.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest

from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from compute.api.models import ApiToken
from compute.api.tokens import find_token
from socialgrid.ratelimit import hit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_WINDOW = 60


def writes_per_minute() -> int:
    return int(settings.COMPUTE.get("API_WRITES_PER_MINUTE", 60))


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = find_token(token.strip())
        if found is not None:
            # Endpoints act as the token's user.
            request.user = found.user
        return found


class WriteThrottle(BaseThrottle):
    """At most ``COMPUTE["API_WRITES_PER_MINUTE"]`` changes per token and minute (reads are
    not counted): a leaked or looping client cannot flood the work queue."""

    def allow_request(self, request: HttpRequest) -> bool:
        if request.method in SAFE_METHODS:
            return True
        token = getattr(request, "auth", None)
        who = f"t{token.id}" if isinstance(token, ApiToken) else "anonymous"
        return hit(f"api-write:{who}", writes_per_minute(), WRITE_WINDOW)

    def wait(self) -> float:
        return WRITE_WINDOW - time.time() % WRITE_WINDOW
