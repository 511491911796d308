"""socialaccount_settings(environ): providers configured from the environment only."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

import pytest

from socialgrid.accounts.providers import PROVIDER_APPS, socialaccount_settings
from tests.socialgrid.accounts.fake_providers import PROVIDER_ENV


def test_an_empty_environment_configures_no_provider_but_installs_all_apps():
    apps, providers = socialaccount_settings({})

    assert apps == PROVIDER_APPS
    assert providers == {}


def test_the_full_environment_configures_all_four_providers():
    _, providers = socialaccount_settings(PROVIDER_ENV)

    assert set(providers) == {"facebook", "google", "github", "openid_connect"}
    assert providers["facebook"]["APPS"] == [
        {"client_id": "fb-client", "secret": "fb-secret", "key": ""}
    ]
    assert providers["facebook"]["METHOD"] == "oauth2"  # no Facebook script on our pages
    assert "picture.type(large)" in providers["facebook"]["FIELDS"]
    assert providers["google"]["APPS"][0]["client_id"] == "google-client"
    assert providers["google"]["OAUTH_PKCE_ENABLED"] is True
    assert providers["github"]["APPS"][0]["secret"] == "gh-secret"
    assert providers["openid_connect"]["APPS"] == [
        {
            "provider_id": "campus",
            "name": "Campus login",
            "client_id": "oidc-client",
            "secret": "oidc-secret",
            "settings": {"server_url": "https://id.example.edu/realms/main"},
        }
    ]


def test_values_are_trimmed_and_blank_means_unset():
    _, providers = socialaccount_settings(
        {"GITHUB_CLIENT_ID": " id \n", "GITHUB_SECRET": " s ", "GOOGLE_CLIENT_ID": "  "}
    )

    assert providers == {
        "github": {
            "SCOPE": ["read:user", "user:email"],
            "APPS": [{"client_id": "id", "secret": "s", "key": ""}],
        }
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GOOGLE_CLIENT_ID": "x"}, "GOOGLE_CLIENT_ID is set but GOOGLE_SECRET is not"),
        ({"FACEBOOK_SECRET": "x"}, "FACEBOOK_SECRET is set but FACEBOOK_CLIENT_ID is not"),
        ({"OIDC_CLIENT_ID": "x", "OIDC_SECRET": "y"}, "OIDC_SERVER_URL is not"),
        (
            {"OIDC_CLIENT_ID": "x", "OIDC_SECRET": "y", "OIDC_SERVER_URL": "id.example"},
            "OIDC_SERVER_URL must be an https://",
        ),
        (
            {
                "OIDC_CLIENT_ID": "x",
                "OIDC_SECRET": "y",
                "OIDC_SERVER_URL": "https://id.example",
                "OIDC_PROVIDER_ID": "Bad/Id",
            },
            "OIDC_PROVIDER_ID must be",
        ),
        ({"GITHUB_CLIENT_ID": "x", "GITHUB_SECRET_FILE": "/nonexistent"}, "GITHUB_SECRET_FILE"),
    ],
)
def test_a_half_or_bad_configuration_names_the_variable(env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        socialaccount_settings(env)


def test_the_openid_connect_id_and_name_have_defaults():
    _, providers = socialaccount_settings(
        {"OIDC_CLIENT_ID": "x", "OIDC_SECRET": "y", "OIDC_SERVER_URL": "https://id.example"}
    )

    (app,) = providers["openid_connect"]["APPS"]
    assert (app["provider_id"], app["name"]) == ("oidc", "OpenID Connect")


def test_a_secret_may_come_from_a_file(tmp_path):
    secret = tmp_path / "google_secret"
    secret.write_text("from-a-file\n")

    _, providers = socialaccount_settings(
        {"GOOGLE_CLIENT_ID": "id", "GOOGLE_SECRET_FILE": str(secret)}
    )

    assert providers["google"]["APPS"][0]["secret"] == "from-a-file"


def test_the_reading_does_not_touch_os_environ(monkeypatch):
    monkeypatch.setenv("GITHUB_CLIENT_ID", "from-os")
    monkeypatch.setenv("GITHUB_SECRET", "from-os")

    assert socialaccount_settings({}) == (PROVIDER_APPS, {})
