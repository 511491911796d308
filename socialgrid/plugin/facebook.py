"""Facebook's ``signed_request``: what a canvas or page-tab app receives when Facebook loads it.

Facebook POSTs ``signed_request=<signature>.<payload>`` to the canvas URL, both parts
base64url without padding. The signature is HMAC-SHA256 of the payload *as sent* (the
base64url text) under the app secret; the payload is a JSON object with at least
``"algorithm": "HMAC-SHA256"`` and ``issued_at`` (Unix seconds), and ``user_id`` once the
person has authorised the app.

The signature is checked before the payload is even decoded: nothing from an unsigned
request is trusted or parsed. A request older than ``MAX_AGE`` is refused, so a copied
one cannot be replayed for long.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from allauth.socialaccount.models import SocialAccount

ALGORITHM = "HMAC-SHA256"
PROVIDER = "facebook"
MAX_AGE = timedelta(hours=1)
# Facebook's clock and ours may disagree a little.
CLOCK_SKEW = timedelta(minutes=5)
# Real ones are a few hundred characters; anything far longer is not from Facebook.
MAX_LENGTH = 8192
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
USER_ID = re.compile(r"^[0-9]{1,32}$")


class InvalidSignedRequest(Exception):
    """Why a signed_request was refused, in words a person can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    issued_at: datetime
    user_id: str | None  # the Facebook user, once they have authorised the app
    payload: dict[str, Any]


def b64url_decode(text: str) -> bytes:
    if not B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(payload_b64: str, secret: str) -> bytes:
    return hmac.new(secret.encode(), payload_b64.encode("ascii"), hashlib.sha256).digest()


def encode_signed_request(payload: dict[str, Any], secret: str) -> str:
    """A signed_request as Facebook makes it (for tests and for trying the canvas locally)."""
    body = b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{b64url_encode(sign(body, secret))}.{body}"


def parse_signed_request(
    raw: str | None, secret: str, now: datetime | None = None
) -> SignedRequest:
    """The verified content of ``raw``, or InvalidSignedRequest saying what is wrong."""
    if not secret:
        # An empty key would let anyone sign: never verify against it.
        raise InvalidSignedRequest("The Facebook app secret is not configured on this site.")
    if not raw:
        raise InvalidSignedRequest("The request from Facebook has no signed_request.")
    if len(raw) > MAX_LENGTH:
        raise InvalidSignedRequest("The signed_request is too long to be from Facebook.")
    parts = raw.split(".")
    try:
        if len(parts) != 2:
            raise ValueError("not two parts")
        signature_b64, payload_b64 = parts
        signature = b64url_decode(signature_b64)
        b64url_decode(payload_b64)
    except (ValueError, binascii.Error) as e:
        raise InvalidSignedRequest(
            "The signed_request is malformed: expected two base64url parts, signature.payload."
        ) from e
    if not hmac.compare_digest(signature, sign(payload_b64, secret)):
        raise InvalidSignedRequest(
            "The signed_request's signature is wrong: it was not signed with this app's secret."
        )
    return _read_payload(b64url_decode(payload_b64), now or timezone.now())


def _read_payload(data: bytes, now: datetime) -> SignedRequest:
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidSignedRequest("The signed_request's payload is not valid JSON.") from e
    if not isinstance(payload, dict):
        raise InvalidSignedRequest("The signed_request's payload is not a JSON object.")
    algorithm = payload.get("algorithm")
    if not isinstance(algorithm, str) or algorithm.upper() != ALGORITHM:
        raise InvalidSignedRequest(
            f"The signed_request uses algorithm {algorithm!r}; only {ALGORITHM} is accepted."
        )
    issued_at = _timestamp(payload.get("issued_at"))
    if issued_at is None:
        raise InvalidSignedRequest("The signed_request has no valid issued_at time.")
    if issued_at < now - MAX_AGE:
        raise InvalidSignedRequest(
            "The signed_request has expired (issued over an hour ago): reload the page on Facebook."
        )
    if issued_at > now + CLOCK_SKEW:
        raise InvalidSignedRequest("The signed_request's issued_at time is in the future.")
    expires = payload.get("expires", 0)
    if expires not in (0, None):  # 0: a token that does not expire
        expires_at = _timestamp(expires)
        if expires_at is None:
            raise InvalidSignedRequest("The signed_request's expires time is not valid.")
        if expires_at <= now:
            raise InvalidSignedRequest(
                "The signed_request has expired: reload the page on Facebook."
            )
    user_id = payload.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if user_id is not None and not (isinstance(user_id, str) and USER_ID.match(user_id)):
        raise InvalidSignedRequest("The signed_request's user_id is not valid.")
    return SignedRequest(issued_at=issued_at, user_id=user_id, payload=payload)


def _timestamp(value: Any) -> datetime | None:
    # bool is an int in Python; true is not a time.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def linked_user(facebook_user_id: str | None) -> AbstractBaseUser | None:
    """Our user whose Facebook social account is ``facebook_user_id``, if any."""
    if not facebook_user_id:
        return None
    account = (
        SocialAccount.objects.filter(provider=PROVIDER, uid=facebook_user_id)
        .select_related("user__profile")
        .first()
    )
    return account.user if account is not None else None
