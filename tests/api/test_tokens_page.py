"""/owners/tokens/: make a token (its key shown once), list and revoke one's own tokens."""

from __future__ import annotations

import re

from django.test import Client

import pytest

from compute.api.models import ApiToken
from compute.api.tokens import find_token, issue_token

URL = "/owners/tokens/"


def shown_key(html: str) -> str | None:
    found = re.search(r'id="new-key-value"[^>]*value="([^"]+)"', html)
    return found[1] if found else None


@pytest.mark.django_db
def test_signing_in_is_required(client):
    assert client.get(URL)["Location"] == f"/accounts/login/?next={URL}"
    assert client.post(URL, {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_new_key_is_shown_once_and_works(client, owner):
    client.force_login(owner)

    response = client.post(URL, {"name": "laptop"})
    assert response.status_code == 302
    html = client.get(URL).content.decode()
    key = shown_key(html)

    assert find_token(key).user == owner
    assert f"export SOCIALGRID_TOKEN={key}" in html
    assert "shown only this once" in html
    again = client.get(URL).content.decode()
    assert shown_key(again) is None
    assert key not in again
    assert f"{key[:10]}…" in again


@pytest.mark.django_db
def test_a_bad_name_is_explained_and_makes_nothing(client, owner):
    client.force_login(owner)

    response = client.post(URL, {"name": "   "})

    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_forms_need_the_csrf_token(owner):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    token = issue_token(owner, "ci").token

    assert browser.post(URL, {"name": "x"}).status_code == 403
    assert browser.post(f"{URL}{token.id}/revoke/").status_code == 403
    assert ApiToken.objects.count() == 1
    assert ApiToken.objects.get().revoked_at is None


@pytest.mark.django_db
def test_revoking_stops_the_key_at_once(client, owner):
    issued = issue_token(owner, "ci")
    client.force_login(owner)

    response = client.post(f"{URL}{issued.token.id}/revoke/", follow=True)

    assert "requests with it are refused" in response.content.decode()
    assert find_token(issued.key) is None
    assert "revoked" in response.content.decode()
    assert client.get(f"{URL}{issued.token.id}/revoke/").status_code == 405


@pytest.mark.django_db
def test_nobody_sees_or_revokes_anothers_tokens(client, owner, user_factory):
    issued = issue_token(owner, "owners-secret-name")
    client.force_login(user_factory())

    html = client.get(URL).content.decode()
    response = client.post(f"{URL}{issued.token.id}/revoke/", follow=True)

    assert "owners-secret-name" not in html
    assert "No such active token" in response.content.decode()
    assert find_token(issued.key) is not None


@pytest.mark.django_db
def test_token_names_are_escaped(client, owner):
    issue_token(owner, "<script>alert(1)</script>")
    client.force_login(owner)

    html = client.get(URL).content.decode()

    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_making_tokens_is_rate_limited(client, owner):
    client.force_login(owner)

    statuses = [client.post(URL, {"name": f"t{i}"}).status_code for i in range(21)]

    assert statuses[:20] == [302] * 20
    assert statuses[20] == 429
