"""The project settings wire the providers, the adapter and the rate limits in (the lines the
accounts app asks socialgrid/settings.py for)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from socialgrid.accounts.providers import PROVIDER_APPS
from socialgrid.accounts.views import too_many_requests

ROOT = Path(__file__).resolve().parents[3]


def test_every_provider_app_is_installed(settings):
    assert set(PROVIDER_APPS) <= set(settings.INSTALLED_APPS)


def test_the_social_adapter_is_ours(settings):
    assert settings.SOCIALACCOUNT_ADAPTER == "socialgrid.accounts.adapter.SocialAccountAdapter"


def test_the_providers_come_from_the_environment():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACEBOOK_", "GOOGLE_", "GITHUB_", "OIDC_"))
    }
    env.update(
        GITHUB_CLIENT_ID="from-env",
        GITHUB_SECRET="secret-from-env",
        DJANGO_SETTINGS_MODULE=os.environ["DJANGO_SETTINGS_MODULE"],
    )
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.SOCIALACCOUNT_PROVIDERS))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
    )

    assert out.returncode == 0, out.stderr
    providers = json.loads(out.stdout)
    assert list(providers) == ["github"]
    assert providers["github"]["APPS"][0]["client_id"] == "from-env"


def test_the_rate_limited_page_explains_itself(db):
    request = RequestFactory().post("/accounts/login/")
    request.user = AnonymousUser()
    response = too_many_requests(request)

    assert response.status_code == 429
    assert b"Too many attempts" in response.content
