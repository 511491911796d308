"""API tokens: issued with a key shown once, stored as a hash, found by key, revoked."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

import pytest

from compute.api.models import ApiToken
from compute.api.tokens import MAX_ACTIVE, find_token, issue_token, revoke_token


@pytest.mark.django_db
def test_a_key_is_stored_only_as_its_hash_with_a_visible_prefix(user_factory):
    issued = issue_token(user_factory(), "  my   laptop ")

    token = ApiToken.objects.get()
    assert issued.key.startswith("sg_")
    assert len(issued.key) == 46
    assert token.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
    assert issued.key not in {token.name, token.prefix, token.key_hash}
    assert token.prefix == issued.key[:10]
    assert token.name == "my laptop"


@pytest.mark.django_db
def test_the_key_finds_its_token_and_records_the_use(user_factory):
    issued = issue_token(user_factory(), "ci")
    now = timezone.now()

    assert find_token(issued.key, now) == issued.token
    assert ApiToken.objects.get().last_used_at == now


@pytest.mark.django_db
def test_last_use_is_written_at_most_once_a_minute(user_factory):
    issued = issue_token(user_factory(), "ci")
    first = timezone.now()
    find_token(issued.key, first)

    find_token(issued.key, first + timedelta(seconds=30))
    assert ApiToken.objects.get().last_used_at == first
    find_token(issued.key, first + timedelta(seconds=61))
    assert ApiToken.objects.get().last_used_at == first + timedelta(seconds=61)


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "sg_nope", "not-even-the-prefix", "sg_" + "x" * 200])
def test_unknown_keys_find_nothing(user_factory, key):
    issue_token(user_factory(), "ci")

    assert find_token(key) is None


@pytest.mark.django_db
def test_a_revoked_token_is_not_found(user_factory):
    user = user_factory()
    issued = issue_token(user, "ci")

    assert revoke_token(user, issued.token.id)
    assert find_token(issued.key) is None
    assert not revoke_token(user, issued.token.id)  # once


@pytest.mark.django_db
def test_nobody_revokes_another_users_token(user_factory):
    issued = issue_token(user_factory(), "ci")

    assert not revoke_token(user_factory(), issued.token.id)
    assert find_token(issued.key) is not None


@pytest.mark.django_db
def test_a_deactivated_users_tokens_stop_working(user_factory):
    user = user_factory()
    issued = issue_token(user, "ci")
    user.is_active = False
    user.save()

    assert find_token(issued.key) is None


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "message"), [("   ", "name"), ("x" * 61, "at most 60")])
def test_a_token_needs_a_short_name(user_factory, name, message):
    with pytest.raises(ValidationError, match=message):
        issue_token(user_factory(), name)
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_active_tokens_are_limited_but_revoked_ones_do_not_count(user_factory):
    user = user_factory()
    tokens = [issue_token(user, f"t{i}") for i in range(MAX_ACTIVE)]

    with pytest.raises(ValidationError, match="revoke one"):
        issue_token(user, "one too many")
    revoke_token(user, tokens[0].token.id)
    issue_token(user, "now it fits")
