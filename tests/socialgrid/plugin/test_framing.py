"""Only the /embed/ pages may be framed, by whom EMBED_ALLOWED_ORIGINS says; every other
page keeps X-Frame-Options: DENY."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

import pytest

from socialgrid import csp
from socialgrid.plugin import checks, framing


def ancestors(response) -> str:
    """The frame-ancestors directive of the response's policy (the rest is the site's)."""
    policy = csp.parse(response["Content-Security-Policy"])
    return " ".join(["frame-ancestors", *policy["frame-ancestors"]])


@pytest.fixture
def project(project_factory):
    return project_factory(slug="squares")


def test_by_default_any_site_may_frame_the_plugin_page(client, project, settings):
    del settings.EMBED_ALLOWED_ORIGINS  # as before the setting is added
    response = client.get("/embed/squares/")
    assert ancestors(response) == "frame-ancestors *"
    assert "X-Frame-Options" not in response


def test_star_in_the_setting_allows_any_site(client, project, settings):
    settings.EMBED_ALLOWED_ORIGINS = ["*"]
    assert ancestors(client.get("/embed/squares/")) == "frame-ancestors *"


def test_a_configured_list_restricts_who_may_frame_the_plugin_page(client, project, settings):
    settings.EMBED_ALLOWED_ORIGINS = ["https://blog.example.org", "https://*.example.net:8443/"]
    response = client.get("/embed/squares/")
    assert ancestors(response) == (
        "frame-ancestors 'self' https://blog.example.org https://*.example.net:8443"
    )
    assert "X-Frame-Options" not in response


def test_an_empty_list_lets_only_this_site_frame_the_plugin_page(client, project, settings):
    settings.EMBED_ALLOWED_ORIGINS = []
    assert ancestors(client.get("/embed/squares/")) == "frame-ancestors 'self'"


@pytest.mark.parametrize("path", ["/", "/projects/squares/", "/projects/squares/stats.json"])
def test_other_pages_still_refuse_to_be_framed(client, project, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert ancestors(response) == "frame-ancestors 'none'"


def test_the_facebook_page_may_only_be_framed_by_facebook(client, settings):
    settings.FACEBOOK_APP_SECRET = "s3cret"
    settings.EMBED_ALLOWED_ORIGINS = ["*"]
    response = client.post("/embed/facebook/", {"signed_request": "nonsense"})
    assert response.status_code == 400
    assert ancestors(response) == (
        "frame-ancestors https://www.facebook.com https://apps.facebook.com"
    )
    assert "X-Frame-Options" not in response


@pytest.mark.parametrize(
    "value",
    [
        "blog.example.org",
        "https://blog.example.org/path",
        "https://blog.example.org; script-src *",
        "https://a.example.org https://b.example.org",
        "javascript://x",
        "'unsafe-inline'",
    ],
)
def test_anything_but_an_origin_is_a_configuration_error(value):
    with pytest.raises(ImproperlyConfigured, match="EMBED_ALLOWED_ORIGINS"):
        framing.parse_allowed_origins([value])


def test_a_bad_setting_fails_the_system_check(settings):
    settings.EMBED_ALLOWED_ORIGINS = ["https://ok.example.org", "not an origin"]
    errors = checks.check_plugin_settings()
    assert [e.id for e in errors] == ["plugin.E001"]
    assert "not an origin" in errors[0].msg


def test_a_good_setting_passes_the_system_check(settings):
    settings.EMBED_ALLOWED_ORIGINS = ["https://ok.example.org"]
    assert checks.check_plugin_settings() == []


def test_the_setting_may_be_a_comma_separated_string(settings):
    settings.EMBED_ALLOWED_ORIGINS = "https://a.example.org, https://b.example.org"
    assert framing.embed_ancestors() == ("'self'", "https://a.example.org", "https://b.example.org")
