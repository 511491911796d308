"""API tokens: issuing, finding by key and revoking.

A key is ``sg_`` and 43 URL-safe characters (256 random bits). Only its SHA-256 is stored,
so a leaked database does not leak working keys; a plain hash (no salt, no stretching) is
enough for a random key of that size, and it lets a request find its token with one indexed
lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from compute.api.models import ApiToken

KEY_PREFIX = "sg_"
VISIBLE = 10  # characters of the key kept in clear: "sg_" and 7 more
MAX_ACTIVE = 20
NAME_MAX = 60
# last_used_at is written at most this often per token, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # shown to its owner once, never stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(user, name: str) -> IssuedToken:
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Give the token a name, such as the machine that will use it.")
    if len(name) > NAME_MAX:
        raise ValidationError(f"Use at most {NAME_MAX} characters for the name.")
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_ACTIVE:
        raise ValidationError(
            f"You have {MAX_ACTIVE} active tokens; revoke one you no longer use first."
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:VISIBLE], key_hash=hash_key(key)
    )
    return IssuedToken(token, key)


def find_token(key: str, now: datetime | None = None) -> ApiToken | None:
    """The active token of an active user with this key, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = now or timezone.now()
    if token.last_used_at is None or token.last_used_at < now - TOUCH_EVERY:
        # Conditional, so concurrent requests write it once.
        ApiToken.objects.filter(id=token.id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_EVERY)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke_token(user, token_id: int, now: datetime | None = None) -> bool:
    """Revoke one of ``user``'s tokens; False when they have no such active token."""
    return bool(
        ApiToken.objects.filter(id=token_id, user=user, revoked_at__isnull=True).update(
            revoked_at=now or timezone.now()
        )
    )
