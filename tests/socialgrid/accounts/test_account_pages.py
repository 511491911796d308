"""allauth's pages render inside the site's layout with the element overrides: labelled
fields, the site's header and footer, the accounts stylesheet."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialAccount

ENTRANCE_PAGES = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/confirm-email/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ENTRANCE_PAGES)
def test_entrance_pages_use_the_site_layout(client, url):
    response = client.get(url)
    html = response.content.decode()

    assert response.status_code == 200
    assert 'class="site-header"' in html
    assert 'class="site-footer"' in html
    assert "socialgrid/accounts.css" in html
    assert '<h1 class="auth-title auth-entrance">' in html
    assert html.count("<h1") == 1
    assert '<meta name="robots" content="noindex">' in html


@pytest.mark.django_db
def test_the_sign_in_form_has_visible_labels_and_keeps_next(client):
    html = client.get("/accounts/login/", {"next": "/projects/fractals/"}).content.decode()

    assert '<label for="id_login">' in html
    assert '<label for="id_password">Password</label>' in html
    assert '<label for="id_remember"><input type="checkbox" name="remember"' in html
    assert 'name="next" value="/projects/fractals/"' in html
    assert 'href="/accounts/password/reset/"' in html  # "Forgot your password?"
    assert 'href="/accounts/signup/?next=%2Fprojects%2Ffractals%2F"' in html
    assert "<title>Sign in · socialgrid</title>" in html


@pytest.mark.django_db
def test_a_failed_sign_in_shows_the_error_at_the_top_of_the_form(client, user_factory):
    user_factory("someone")
    html = client.post("/accounts/login/", {"login": "someone", "password": "no"}).content.decode()

    assert 'class="form-errors" role="alert"' in html


@pytest.mark.django_db
def test_the_sign_up_form_explains_password_rules(client):
    html = client.get("/accounts/signup/").content.decode()

    assert 'id="id_password1_helptext"' in html
    assert 'aria-describedby="id_password1_helptext"' in html


@pytest.mark.django_db
def test_sign_out_asks_for_confirmation_and_signs_out_on_post(client, user_factory):
    client.force_login(user_factory())
    page = client.get("/accounts/logout/")

    assert page.status_code == 200
    assert '<h1 class="auth-title">' in page.content.decode()
    assert "_auth_user_id" in client.session
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_connections_page_lists_connected_accounts(client, user_factory, configure_providers):
    configure_providers("github")
    user = user_factory()
    SocialAccount.objects.create(
        user=user, provider="github", uid="1", extra_data={"login": "octo"}
    )
    client.force_login(user)
    html = client.get("/accounts/3rdparty/").content.decode()

    assert 'type="radio"' in html
    assert 'class="badge' in html
    assert "GitHub" in html
    assert 'class="danger outline"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/email/", "/accounts/password/change/"])
def test_account_management_pages_render(client, user_factory, url):
    client.force_login(user_factory())
    response = client.get(url)

    assert response.status_code == 200
    assert '<h1 class="auth-title">' in response.content.decode()
