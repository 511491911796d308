"""/embed/facebook/: Facebook's canvas page, behind a verified signed_request."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client

import pytest
from allauth.socialaccount.models import SocialAccount

from compute.models import Host, Membership
from socialgrid.accounts.models import Privacy
from socialgrid.plugin.facebook import encode_signed_request
from tests.socialgrid.plugin.markup import parse

SECRET = "facebook-app-secret"
URL = "/embed/facebook/?project=squares"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.FACEBOOK_APP_SECRET = SECRET


@pytest.fixture
def project(project_factory):
    return project_factory(slug="squares", name="Squares@Home")


@pytest.fixture
def facebook_client(db) -> Client:
    # Facebook's POST carries no CSRF token: the view must not need one.
    return Client(enforce_csrf_checks=True)


def signed(secret: str = SECRET, **fields) -> str:
    return encode_signed_request(
        {"algorithm": "HMAC-SHA256", "issued_at": int(time.time()) - 5, **fields}, secret
    )


def link(user, uid: str = "1234") -> SocialAccount:
    return SocialAccount.objects.create(user=user, provider="facebook", uid=uid)


def identity(response) -> str:
    return " ".join(parse(response.content).one("section", class_="plugin-identity").text.split())


def counts() -> tuple[int, ...]:
    return (
        get_user_model().objects.count(),
        SocialAccount.objects.count(),
        Host.objects.count(),
        Membership.objects.count(),
        Session.objects.count(),
    )


def test_a_valid_request_shows_the_plugin_page(facebook_client, project):
    response = facebook_client.post(URL, {"signed_request": signed()})
    assert response.status_code == 200
    page = parse(response.content)
    assert page.one("section", data_volunteer=None)["data-project"] == "squares"
    assert page.one("div", data_plugin_panel=None).has("inert")
    assert "You compute anonymously" in identity(response)


def test_a_linked_user_signed_in_here_gets_the_credit(facebook_client, project, user_factory):
    ada = user_factory("ada")
    link(ada, "1234")
    facebook_client.force_login(ada)
    response = facebook_client.post(URL, {"signed_request": signed(user_id="1234")})
    assert response.status_code == 200
    assert "Signed in as ada." in identity(response)
    assert "credited to your socialgrid account" in identity(response)
    assert parse(response.content).one("section", data_volunteer=None)["data-signed-in"] == "true"


def test_a_linked_user_not_signed_in_here_computes_anonymously_and_is_invited_to_sign_in(
    facebook_client, project, user_factory
):
    ada = user_factory("ada")
    ada.profile.display_name = "Ada L."
    ada.profile.save()
    link(ada, "1234")
    response = facebook_client.post(URL, {"signed_request": signed(user_id="1234")})
    text = identity(response)
    assert "Signed in as Ada L. through Facebook." in text
    assert "not credited to you" in text
    assert 'href="/accounts/login/?next=/projects/squares/"' in response.content.decode()
    assert parse(response.content).one("section", data_volunteer=None)["data-signed-in"] == "false"


def test_a_linked_user_who_chose_anonymity_is_shown_by_their_public_name(
    facebook_client, project, user_factory
):
    ada = user_factory("ada")
    ada.profile.privacy = Privacy.ANONYMOUS
    ada.profile.save()
    link(ada, "1234")
    text = identity(facebook_client.post(URL, {"signed_request": signed(user_id="1234")}))
    assert f"Signed in as Anonymous volunteer #{ada.pk}" in text
    assert "ada" not in text


def test_another_account_signed_in_here_is_the_one_credited(facebook_client, project, user_factory):
    link(user_factory("ada"), "1234")
    facebook_client.force_login(user_factory("bob"))
    text = identity(facebook_client.post(URL, {"signed_request": signed(user_id="1234")}))
    assert "linked to ada" in text
    assert "credited to bob" in text


def test_an_unlinked_facebook_user_computes_anonymously(facebook_client, project, user_factory):
    link(user_factory("ada"), "1234")
    response = facebook_client.post(URL, {"signed_request": signed(user_id="999")})
    assert response.status_code == 200
    text = identity(response)
    assert "not linked to a socialgrid account" in text
    assert "anonymously" in text
    assert "ada" not in text


def test_only_facebook_accounts_link(facebook_client, project, user_factory):
    SocialAccount.objects.create(user=user_factory("ada"), provider="google", uid="1234")
    text = identity(facebook_client.post(URL, {"signed_request": signed(user_id="1234")}))
    assert "not linked" in text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (signed(secret="wrong"), "signature is wrong"),
        (signed(algorithm="HMAC-SHA1"), "only HMAC-SHA256 is accepted"),
        (signed(issued_at=int(time.time()) - 7200), "expired"),
        ("not-a-signed-request", "malformed"),
        ("%%%.$$$", "malformed"),
        (signed(issued_at=None), "no valid issued_at"),
        ("", "no signed_request"),
    ],
)
def test_a_bad_signed_request_gets_a_clear_400_and_changes_nothing(
    facebook_client, project, user_factory, raw, message
):
    link(user_factory("ada"), "1234")
    before = counts()
    response = facebook_client.post(URL, {"signed_request": raw})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "This page could not be opened" in response.content.decode()
    assert not parse(response.content).all("section", data_volunteer=None)
    assert counts() == before
    assert not response.cookies


def test_a_missing_signed_request_field_is_a_400(facebook_client, project):
    response = facebook_client.post(URL, {"something_else": "x"})
    assert response.status_code == 400
    assert "no signed_request" in response.content.decode()


def test_a_signed_request_that_is_not_json_is_a_400(facebook_client, project):
    from socialgrid.plugin.facebook import b64url_encode, sign

    body = b64url_encode(b"{not json")
    raw = f"{b64url_encode(sign(body, SECRET))}.{body}"
    response = facebook_client.post(URL, {"signed_request": raw})
    assert response.status_code == 400
    assert "not valid JSON" in response.content.decode()


def test_the_project_must_be_named(facebook_client, project):
    response = facebook_client.post("/embed/facebook/", {"signed_request": signed()})
    assert response.status_code == 400
    assert "?project=" in response.content.decode()


def test_a_private_project_is_not_found(facebook_client, project_factory):
    project_factory(slug="hidden", is_public=False)
    response = facebook_client.post("/embed/facebook/?project=hidden", {"signed_request": signed()})
    assert response.status_code == 404


def test_without_an_app_secret_the_page_does_not_exist(facebook_client, project, settings):
    settings.FACEBOOK_APP_SECRET = ""
    response = facebook_client.post(URL, {"signed_request": signed(secret="")})
    assert response.status_code == 404


def test_the_canvas_page_only_answers_post(client, project):
    assert client.get(URL).status_code == 405


def test_the_error_page_escapes_what_it_shows(facebook_client, project):
    response = facebook_client.post(
        URL, {"signed_request": signed(algorithm="<script>alert(1)</script>")}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
