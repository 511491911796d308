"""Every API call needs a valid Bearer key; changes are rate-limited per token."""

from __future__ import annotations

import pytest

from compute.api.tokens import revoke_token
from tests.api.conftest import ApiClient, body


@pytest.mark.django_db
def test_no_key_is_401_with_a_bearer_challenge(api_as):
    response = api_as(None).get("/api/projects")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer" in body(response)["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["Bearer sg_wrong", "Basic dXNlcjpwdw==", "Token sg_x", "Bearer", "sg_x"]
)
def test_wrong_or_malformed_keys_are_401(client, owner, header):
    response = client.get("/api/projects", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401


@pytest.mark.django_db
def test_a_session_cookie_is_not_enough(client, owner):
    # The API takes keys only: a signed-in browser cannot be made to call it.
    client.force_login(owner)

    assert client.get("/api/projects").status_code == 401
    assert client.post("/api/projects", {}, content_type="application/json").status_code == 401


@pytest.mark.django_db
def test_a_revoked_key_is_refused_on_its_next_request(owner, key_for):
    key = key_for(owner)
    api = ApiClient(key)
    assert api.get("/api/projects").status_code == 200

    revoke_token(owner, owner.api_tokens.get().id)

    assert api.get("/api/projects").status_code == 401


@pytest.mark.django_db
def test_changes_are_rate_limited_per_token_and_reads_are_not(owner, key_for, settings):
    settings.COMPUTE = {**settings.COMPUTE, "API_WRITES_PER_MINUTE": 3}
    api = ApiClient(key_for(owner))
    other = ApiClient(key_for(owner, "second"))
    new = {"slug": "x", "name": "X"}

    statuses = [
        api.post_json("/api/projects", {**new, "slug": f"p{i}"}).status_code for i in range(4)
    ]

    assert statuses == [201, 201, 201, 429]
    refused = api.post_json("/api/projects", {**new, "slug": "late"})
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert not owner.owned_projects.filter(slug="late").exists()
    assert api.get("/api/projects").status_code == 200
    assert other.post_json("/api/projects", {**new, "slug": "other"}).status_code == 201
