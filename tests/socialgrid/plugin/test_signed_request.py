"""Reading Facebook's signed_request: only a fresh, correctly signed HMAC-SHA256 one passes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from socialgrid.plugin.facebook import (
    InvalidSignedRequest,
    encode_signed_request,
    parse_signed_request,
)

SECRET = "app-secret"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def payload(**fields) -> dict:
    return {"algorithm": "HMAC-SHA256", "issued_at": int(NOW.timestamp()) - 10, **fields}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_raw(body: bytes, secret: str = SECRET) -> str:
    """Sign arbitrary payload bytes the way Facebook does, independently of the code."""
    encoded = b64(body)
    signature = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return f"{b64(signature)}.{encoded}"


def refused(raw: str | None, secret: str = SECRET) -> str:
    with pytest.raises(InvalidSignedRequest) as caught:
        parse_signed_request(raw, secret, now=NOW)
    return caught.value.message


def test_a_good_signed_request_is_read():
    raw = signed_raw(json.dumps(payload(user_id="1234", page={"id": "9"})).encode())
    signed = parse_signed_request(raw, SECRET, now=NOW)
    assert signed.user_id == "1234"
    assert signed.issued_at == NOW - timedelta(seconds=10)
    assert signed.payload["page"] == {"id": "9"}


def test_encode_signed_request_matches_facebooks_format():
    body = payload(user_id="42")
    assert encode_signed_request(body, SECRET) == signed_raw(
        json.dumps(body, separators=(",", ":")).encode()
    )


def test_without_a_user_id_the_viewer_is_unknown():
    signed = parse_signed_request(encode_signed_request(payload(), SECRET), SECRET, now=NOW)
    assert signed.user_id is None


def test_a_numeric_user_id_is_read_as_text():
    raw = encode_signed_request(payload(user_id=1234), SECRET)
    assert parse_signed_request(raw, SECRET, now=NOW).user_id == "1234"


def test_a_signature_under_another_secret_is_refused():
    raw = encode_signed_request(payload(user_id="1"), "someone-elses-secret")
    assert "signature is wrong" in refused(raw)


def test_a_changed_payload_is_refused():
    signature, _ = encode_signed_request(payload(user_id="1"), SECRET).split(".")
    forged = b64(json.dumps(payload(user_id="2")).encode())
    assert "signature is wrong" in refused(f"{signature}.{forged}")


def test_no_secret_never_verifies():
    raw = encode_signed_request(payload(), "")
    assert "not configured" in refused(raw, secret="")


@pytest.mark.parametrize("algorithm", ["HMAC-SHA1", "none", "", None, 256])
def test_another_algorithm_is_refused(algorithm):
    raw = encode_signed_request(payload(algorithm=algorithm), SECRET)
    assert "only HMAC-SHA256 is accepted" in refused(raw)


def test_a_missing_algorithm_is_refused():
    body = payload()
    del body["algorithm"]
    assert "only HMAC-SHA256 is accepted" in refused(encode_signed_request(body, SECRET))


def test_the_algorithm_is_case_insensitive():
    raw = encode_signed_request(payload(algorithm="hmac-sha256"), SECRET)
    assert parse_signed_request(raw, SECRET, now=NOW)


def test_an_old_signed_request_is_refused():
    old = int((NOW - timedelta(hours=1, seconds=1)).timestamp())
    assert "expired" in refused(encode_signed_request(payload(issued_at=old), SECRET))


def test_one_just_under_an_hour_old_is_accepted():
    recent = int((NOW - timedelta(minutes=59)).timestamp())
    raw = encode_signed_request(payload(issued_at=recent), SECRET)
    assert parse_signed_request(raw, SECRET, now=NOW)


def test_one_issued_in_the_future_is_refused():
    later = int((NOW + timedelta(minutes=10)).timestamp())
    assert "future" in refused(encode_signed_request(payload(issued_at=later), SECRET))


def test_one_past_its_expires_time_is_refused():
    expires = int((NOW - timedelta(seconds=1)).timestamp())
    assert "expired" in refused(encode_signed_request(payload(expires=expires), SECRET))


def test_expires_zero_means_it_does_not_expire():
    assert parse_signed_request(encode_signed_request(payload(expires=0), SECRET), SECRET, now=NOW)


@pytest.mark.parametrize("issued_at", [None, "1700000000", 1.5e9, True, 10**20])
def test_a_missing_or_bad_issued_at_is_refused(issued_at):
    body = payload(issued_at=issued_at)
    if issued_at is None:
        del body["issued_at"]
    assert "no valid issued_at" in refused(encode_signed_request(body, SECRET))


@pytest.mark.parametrize("user_id", ["", "12a", "1 OR 1=1", ["1"], True])
def test_a_bad_user_id_is_refused(user_id):
    raw = encode_signed_request(payload(user_id=user_id), SECRET)
    assert "user_id is not valid" in refused(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "no-dot-at-all",
        "one.two.three",
        ".payload",
        "signature.",
        "sig+nature.cGF5bG9hZA",  # standard base64, not base64url
        "c2lnbmF0dXJl.cGF5bG9hZA==",  # padded
        "a.b",  # a single base64 character cannot be decoded
        "é.ü",
    ],
)
def test_malformed_input_is_refused(raw):
    assert "malformed" in refused(raw)


def test_a_missing_signed_request_is_refused():
    assert "no signed_request" in refused(None)
    assert "no signed_request" in refused("")


def test_an_overlong_signed_request_is_refused():
    assert "too long" in refused("a" * 9000 + ".b")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"HMAC-SHA256"', "not a JSON object"),
    ],
)
def test_a_correctly_signed_payload_must_be_a_json_object(body, message):
    assert message in refused(signed_raw(body))
