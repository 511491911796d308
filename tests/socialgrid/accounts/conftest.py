"""Fixtures for the accounts tests: providers configured through settings overrides (as the
environment would configure them), and the fake provider endpoints of fake_providers.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from socialgrid.accounts.providers import socialaccount_settings
from tests.socialgrid.accounts.fake_providers import PROVIDER_ENV, FakeHTTP


@pytest.fixture
def configure_providers(settings) -> Callable[..., dict]:
    """Configure the named providers (all four by default) exactly as the environment
    would; returns the SOCIALACCOUNT_PROVIDERS in effect."""

    def configure(*names: str) -> dict:
        prefixes = {
            "facebook": "FACEBOOK",
            "google": "GOOGLE",
            "github": "GITHUB",
            "openid_connect": "OIDC",
        }
        wanted = names or tuple(prefixes)
        env = {
            k: v
            for k, v in PROVIDER_ENV.items()
            if any(k.startswith(prefixes[name] + "_") for name in wanted)
        }
        _, providers = socialaccount_settings(env)
        settings.SOCIALACCOUNT_PROVIDERS = providers
        return providers

    return configure


@pytest.fixture
def fake_http(monkeypatch) -> FakeHTTP:
    fake = FakeHTTP()

    def request(session, method, url, **kwargs):
        return fake.respond(method, url, kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return fake
