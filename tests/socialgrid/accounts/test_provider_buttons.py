"""A provider's button appears on the sign-in and sign-up pages only when it is configured; an
unconfigured provider's URLs answer 404."""

from __future__ import annotations

import re

from django.utils.html import escape

import pytest

from tests.socialgrid.accounts.fake_providers import start_social_login

PAGES = ["/accounts/login/", "/accounts/signup/"]


def buttons(html: str) -> list[str]:
    return re.findall(r"Continue with ([^<]+?)\s*</button>", html)


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_no_provider_buttons_when_none_is_configured(client, settings, page):
    settings.SOCIALACCOUNT_PROVIDERS = {}
    response = client.get(page)

    assert response.status_code == 200
    assert buttons(response.content.decode()) == []
    assert b"or with your e-mail address" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_every_configured_provider_has_a_button(client, configure_providers, page):
    configure_providers()
    html = client.get(page).content.decode()

    assert sorted(buttons(html)) == ["Campus login", "Facebook", "GitHub", "Google"]
    assert "or with your e-mail address" in html


@pytest.mark.django_db
def test_only_the_configured_provider_has_a_button(client, configure_providers):
    configure_providers("github")
    html = client.get("/accounts/login/").content.decode()

    assert buttons(html) == ["GitHub"]


@pytest.mark.django_db
def test_a_button_posts_to_the_provider_with_next_and_a_csrf_token(client, configure_providers):
    configure_providers("google")
    html = client.get("/accounts/login/", {"next": "/projects/fractals/"}).content.decode()

    action = escape("/accounts/google/login/?process=login&next=%2Fprojects%2Ffractals%2F")
    form = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', html, re.S)
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(1)


@pytest.mark.django_db
def test_the_button_form_starts_the_login_in_one_step(client, configure_providers):
    configure_providers("google")
    response = client.post("/accounts/google/login/?process=login&next=/x/")

    assert response.status_code == 302
    assert response["Location"].startswith("https://accounts.google.com/")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/accounts/facebook/login/",
        "/accounts/facebook/login/callback/?code=x&state=y",
        "/accounts/google/login/",
        "/accounts/github/login/",
        "/accounts/github/login/callback/?code=x&state=y",
        "/accounts/oidc/elsewhere/login/",
    ],
)
def test_an_unconfigured_provider_answers_404(client, configure_providers, url):
    configure_providers("openid_connect")  # as "campus": nothing else is configured

    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404


@pytest.mark.django_db
def test_the_connections_page_offers_the_configured_providers(
    client, user_factory, configure_providers
):
    configure_providers("github", "google")
    client.force_login(user_factory())
    html = client.get("/accounts/3rdparty/").content.decode()

    assert "Connect GitHub" in html
    assert "Connect Google" in html
    assert "Facebook" not in html


@pytest.mark.django_db
def test_cancelling_at_the_provider_says_so(client, configure_providers, fake_http):
    configure_providers("github")
    redirect = start_social_login(client, "/accounts/github/login/", "/")
    response = client.get(
        "/accounts/github/login/callback/",
        {"error": "access_denied", "state": redirect.query["state"]},
        follow=True,
    )

    assert b"Sign-in cancelled" in response.content
    assert fake_http.calls == []
