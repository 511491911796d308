"""A fake of the sign-in providers' HTTP endpoints and the browser's side of an OAuth login.

allauth's own provider test kit is not in the wheel. Every allauth HTTP call goes through a
``requests`` session (the adapter's ``get_requests_session``); ``FakeHTTP`` stands in for
``requests.Session.request`` with canned JSON answers and fails on any request it was not told
about, so nothing ever reaches the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.test import Client

import requests

# What a deployment with all four providers would put in its environment.
PROVIDER_ENV = {
    "FACEBOOK_CLIENT_ID": "fb-client",
    "FACEBOOK_SECRET": "fb-secret",
    "GOOGLE_CLIENT_ID": "google-client",
    "GOOGLE_SECRET": "google-secret",
    "GITHUB_CLIENT_ID": "gh-client",
    "GITHUB_SECRET": "gh-secret",
    "OIDC_PROVIDER_ID": "campus",
    "OIDC_NAME": "Campus login",
    "OIDC_SERVER_URL": "https://id.example.edu/realms/main",
    "OIDC_CLIENT_ID": "oidc-client",
    "OIDC_SECRET": "oidc-secret",
}


@dataclass
class Call:
    method: str
    url: str
    params: dict
    data: dict
    headers: dict


@dataclass
class FakeHTTP:
    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def add(self, method: str, url: str, body: Any, status: int = 200) -> None:
        self.routes[(method.upper(), url)] = (status, body)

    def called(self, method: str, url: str) -> list[Call]:
        return [c for c in self.calls if c.method == method.upper() and c.url == url]

    def respond(self, method: str, url: str, kwargs: dict) -> requests.Response:
        method = method.upper()
        self.calls.append(
            Call(
                method,
                url,
                dict(kwargs.get("params") or {}),
                dict(kwargs.get("data") or {}),
                dict(kwargs.get("headers") or {}),
            )
        )
        if (method, url) not in self.routes:
            raise AssertionError(f"unexpected HTTP request: {method} {url}")
        status, body = self.routes[(method, url)]
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        response.encoding = "utf-8"
        response.url = url
        return response


@dataclass(frozen=True)
class Redirect:
    """Where allauth sent the browser: the provider's authorisation page."""

    url: str
    query: dict[str, str]

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


def start_social_login(client: Client, login_url: str, next_url: str) -> Redirect:
    """What a browser does from a sign-in button: allauth's login view answers GET with a
    confirmation page (logins never start on GET) whose form POSTs back to the same URL."""
    query = urlencode({"process": "login", "next": next_url})
    page = client.get(f"{login_url}?{query}")
    assert page.status_code == 200
    assert b'method="post"' in page.content
    response = client.post(f"{login_url}?{query}")
    assert response.status_code == 302, response.content[:500]
    location = response["Location"]
    parsed = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return Redirect(location, parsed)


def finish_social_login(client: Client, callback_url: str, state: str, code: str = "the-code"):
    return client.get(callback_url, {"code": code, "state": state})
