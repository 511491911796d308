"""Fixtures of the project owners' API tests: owners, their keys and an authorised client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Permission
from django.test import Client

import pytest

from compute.api.tokens import issue_token


class ApiClient:
    """Django's test client with a Bearer key on every request."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}

    def get(self, path: str, **extra: Any):
        return self.client.get(path, **self.headers, **extra)

    def post(self, path: str, data: Any = None, **extra: Any):
        return self.client.post(path, data or {}, **self.headers, **extra)

    def post_json(self, path: str, data: Any):
        return self.client.post(
            path, json.dumps(data), content_type="application/json", **self.headers
        )

    def post_jsonl(self, path: str, body: bytes | str, content_type="application/x-ndjson"):
        if isinstance(body, str):
            body = body.encode()
        return self.client.post(path, body, content_type=content_type, **self.headers)


@pytest.fixture
def grant_create():
    def grant(user) -> None:
        user.user_permissions.add(Permission.objects.get(codename="add_project"))

    return grant


@pytest.fixture
def owner(user_factory, grant_create):
    """A user who may create projects."""
    user = user_factory("owner")
    grant_create(user)
    return user


@pytest.fixture
def key_for() -> Callable[..., str]:
    def make(user, name: str = "laptop") -> str:
        return issue_token(user, name).key

    return make


@pytest.fixture
def api_as(key_for) -> Callable[..., ApiClient]:
    """An API client acting as ``user`` (None: without a key)."""

    def make(user) -> ApiClient:
        return ApiClient(key_for(user) if user is not None else None)

    return make


@pytest.fixture
def api(owner, api_as) -> ApiClient:
    return api_as(owner)


@pytest.fixture
def owned_project(owner, project_factory):
    """A project of ``owner`` with the app "square" (reference tests.support.square) and a
    kernel version."""
    return project_factory(owner=owner, slug="mine", name="Mine")


def body(response) -> Any:
    return json.loads(response.content)
