"""E-mail sign-up with verification through the (console, in tests: locmem) e-mail backend."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core import mail

import pytest
from allauth.account.models import EmailAddress

User = get_user_model()

PASSWORD = "correct-horse-battery-7"


def sign_up(client, next_url: str = "", **fields):
    data = {
        "email": "new@example.org",
        "username": "newbie",
        "password1": PASSWORD,
        "password2": PASSWORD,
        **fields,
    }
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/signup/", data)


def confirmation_link() -> str:
    (message,) = mail.outbox
    match = re.search(r"https?://testserver(/accounts/confirm-email/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.mark.django_db
def test_mandatory_verification_sends_a_link_and_confirming_it_lands_on_next(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    settings.ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True

    response = sign_up(client, next_url="/invite/abc123/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    sent = client.get("/accounts/confirm-email/")
    assert b"auth-entrance" in sent.content
    assert mail.outbox[0].to == ["new@example.org"]

    link = confirmation_link()
    page = client.get(link)
    assert page.status_code == 200
    assert b"new@example.org" in page.content
    response = client.post(link)

    assert response.status_code == 302
    assert response["Location"] == "/invite/abc123/"
    user = User.objects.get(username="newbie")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert EmailAddress.objects.get(user=user).verified
    assert user.profile.display_name == ""


@pytest.mark.django_db
def test_an_unverified_user_cannot_sign_in_under_mandatory_verification(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    sign_up(client)
    client.logout()
    mail.outbox.clear()

    response = client.post("/accounts/login/", {"login": "newbie", "password": PASSWORD})

    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) <= 1  # a fresh link, unless the resend cooldown holds it back


@pytest.mark.django_db
def test_optional_verification_signs_in_at_once_and_still_sends_the_link(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"

    response = sign_up(client, next_url="/projects/fractals/")

    assert response["Location"] == "/projects/fractals/"
    assert "_auth_user_id" in client.session
    assert "/accounts/confirm-email/" in mail.outbox[0].body


@pytest.mark.django_db
def test_an_expired_or_unknown_link_explains_itself(client):
    response = client.get("/accounts/confirm-email/not-a-key/")

    assert response.status_code == 200
    assert b"expired or is invalid" in response.content


@pytest.mark.django_db
def test_signup_errors_are_shown_next_to_the_fields(client, user_factory):
    user_factory("taken")
    response = sign_up(client, username="taken", password2="different-password-9")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_username_error"' in html
    assert 'aria-invalid="true"' in html
    assert not User.objects.filter(email="new@example.org").exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_password_reset_goes_through_the_mailed_link(client, user_factory):
    user_factory("forgetful", email="forgetful@example.org")
    EmailAddress.objects.create(
        user=User.objects.get(username="forgetful"),
        email="forgetful@example.org",
        verified=True,
        primary=True,
    )

    response = client.post("/accounts/password/reset/", {"email": "forgetful@example.org"})
    assert response["Location"] == "/accounts/password/reset/done/"
    assert b"auth-entrance" in client.get("/accounts/password/reset/done/").content
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.group(1),
        {"password1": "a-brand-new-secret-42", "password2": "a-brand-new-secret-42"},
    )

    assert response["Location"] == "/accounts/password/reset/key/done/"
    assert client.login(username="forgetful", password="a-brand-new-secret-42")
