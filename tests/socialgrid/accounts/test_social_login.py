"""Each provider's whole login flow, offline: the sign-in button, the redirect to the provider,
the callback with code and state, the (faked) token exchange and profile fetch. A new user is
created with the provider's name and picture and lands on the page they came from."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import get_user_model

import jwt
import pytest
from allauth.socialaccount.models import SocialAccount

from tests.socialgrid.accounts.fake_providers import finish_social_login, start_social_login

User = get_user_model()

GRAPH = "https://graph.facebook.com/v19.0"
OIDC_ISSUER = "https://id.example.edu/realms/main"
OIDC_CONFIG = {
    "issuer": OIDC_ISSUER,
    "authorization_endpoint": f"{OIDC_ISSUER}/protocol/openid-connect/auth",
    "token_endpoint": f"{OIDC_ISSUER}/protocol/openid-connect/token",
    "userinfo_endpoint": f"{OIDC_ISSUER}/protocol/openid-connect/userinfo",
    "jwks_uri": f"{OIDC_ISSUER}/protocol/openid-connect/certs",
    "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
}


def id_token(issuer: str, audience: str, **claims) -> str:
    # Received straight from the token endpoint over TLS, so allauth (like the OIDC spec)
    # does not check its signature; issuer, audience and expiry are still checked.
    now = int(time.time())
    payload = {"iss": issuer, "aud": audience, "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, "not-checked-" + "x" * 32, algorithm="HS256")


def signed_in_user(client):
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


@pytest.fixture
def landing(project_factory) -> str:
    """The page a volunteer came from: a project page."""
    return project_factory().get_absolute_url()


# ---- Facebook --------------------------------------------------------------------------------


def fake_facebook(fake_http, *, picture: dict | None = None) -> None:
    fake_http.add("GET", f"{GRAPH}/oauth/access_token", {"access_token": "fb-token"})
    fake_http.add(
        "GET",
        f"{GRAPH}/me",
        {
            "id": "10001",
            "name": "Ada Lovelace",
            "email": "ada@example.org",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "picture": picture
            or {"data": {"url": "https://scontent.example/ada.jpg", "is_silhouette": False}},
        },
    )


@pytest.mark.django_db
def test_facebook_sign_up_creates_the_user_fills_the_profile_and_lands_on_next(
    client, configure_providers, fake_http, landing
):
    configure_providers("facebook")
    fake_facebook(fake_http)

    redirect = start_social_login(client, "/accounts/facebook/login/", landing)
    assert redirect.base == "https://www.facebook.com/v19.0/dialog/oauth"
    assert redirect.query["client_id"] == "fb-client"
    assert redirect.query["redirect_uri"] == "http://testserver/accounts/facebook/login/callback/"

    response = finish_social_login(
        client, "/accounts/facebook/login/callback/", redirect.query["state"]
    )

    assert response.status_code == 302
    assert response["Location"] == landing
    user = signed_in_user(client)
    assert user.email == "ada@example.org"
    assert user.profile.display_name == "Ada Lovelace"
    assert user.profile.avatar_url == "https://scontent.example/ada.jpg"
    assert SocialAccount.objects.get(user=user).provider == "facebook"
    (token_call,) = fake_http.called("GET", f"{GRAPH}/oauth/access_token")
    assert token_call.params["code"] == "the-code"
    assert token_call.params["client_secret"] == "fb-secret"
    (me_call,) = fake_http.called("GET", f"{GRAPH}/me")
    assert "picture.type(large)" in me_call.params["fields"]


@pytest.mark.django_db
def test_facebook_silhouette_is_not_taken_as_an_avatar(
    client, configure_providers, fake_http, landing
):
    configure_providers("facebook")
    fake_facebook(
        fake_http,
        picture={"data": {"url": "https://scontent.example/x.jpg", "is_silhouette": True}},
    )
    redirect = start_social_login(client, "/accounts/facebook/login/", landing)
    finish_social_login(client, "/accounts/facebook/login/callback/", redirect.query["state"])

    profile = signed_in_user(client).profile
    assert profile.display_name == "Ada Lovelace"
    assert profile.avatar_url == ""


# ---- Google ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_google_sign_up_reads_the_id_token_and_uses_pkce(
    client, configure_providers, fake_http, landing
):
    configure_providers("google")
    fake_http.add(
        "POST",
        "https://oauth2.googleapis.com/token",
        {
            "access_token": "g-token",
            "expires_in": 3599,
            "id_token": id_token(
                "https://accounts.google.com",
                "google-client",
                sub="g-123",
                email="grace@example.org",
                email_verified=True,
                name="Grace Hopper",
                picture="https://lh3.googleusercontent.example/grace",
            ),
        },
    )

    redirect = start_social_login(client, "/accounts/google/login/", landing)
    assert redirect.base == "https://accounts.google.com/o/oauth2/v2/auth"
    assert redirect.query["code_challenge_method"] == "S256"
    assert set(redirect.query["scope"].split()) == {"profile", "email"}

    response = finish_social_login(
        client, "/accounts/google/login/callback/", redirect.query["state"]
    )

    assert response["Location"] == landing
    user = signed_in_user(client)
    assert user.profile.display_name == "Grace Hopper"
    assert user.profile.avatar_url == "https://lh3.googleusercontent.example/grace"
    assert user.emailaddress_set.get().verified
    (token_call,) = fake_http.called("POST", "https://oauth2.googleapis.com/token")
    assert token_call.data["code"] == "the-code"
    assert token_call.data["code_verifier"]


@pytest.mark.django_db
def test_google_without_an_id_token_fetches_the_user_info(
    client, configure_providers, fake_http, landing
):
    configure_providers("google")
    fake_http.add("POST", "https://oauth2.googleapis.com/token", {"access_token": "g-token"})
    fake_http.add(
        "GET",
        "https://www.googleapis.com/oauth2/v2/userinfo",
        {
            "id": "g-9",
            "email": "kat@example.org",
            "verified_email": True,
            "name": "Katherine Johnson",
            "picture": "https://lh3.googleusercontent.example/kat",
        },
    )
    redirect = start_social_login(client, "/accounts/google/login/", landing)
    response = finish_social_login(
        client, "/accounts/google/login/callback/", redirect.query["state"]
    )

    assert response["Location"] == landing
    (info_call,) = fake_http.called("GET", "https://www.googleapis.com/oauth2/v2/userinfo")
    assert info_call.headers["Authorization"] == "Bearer g-token"
    assert signed_in_user(client).profile.display_name == "Katherine Johnson"


# ---- GitHub ----------------------------------------------------------------------------------


def fake_github(fake_http, *, name: str | None, emails: list | None = None) -> None:
    fake_http.add(
        "POST", "https://github.com/login/oauth/access_token", {"access_token": "gh-token"}
    )
    fake_http.add(
        "GET",
        "https://api.github.com/user",
        {
            "id": 4242,
            "login": "octolinus",
            "name": name,
            "email": None,
            "avatar_url": "https://avatars.githubusercontent.example/u/4242",
            "html_url": "https://github.com/octolinus",
        },
    )
    fake_http.add(
        "GET",
        "https://api.github.com/user/emails",
        [{"email": "linus@example.org", "primary": True, "verified": True}]
        if emails is None
        else emails,
    )


@pytest.mark.django_db
def test_github_sign_up_lands_on_an_invite_link(client, configure_providers, fake_http):
    configure_providers("github")
    fake_github(fake_http, name="Linus T")

    redirect = start_social_login(client, "/accounts/github/login/", "/invite/abc123/")
    assert redirect.base == "https://github.com/login/oauth/authorize"
    response = finish_social_login(
        client, "/accounts/github/login/callback/", redirect.query["state"]
    )

    assert response["Location"] == "/invite/abc123/"
    user = signed_in_user(client)
    assert user.username == "octolinus"
    assert user.email == "linus@example.org"
    assert user.profile.display_name == "Linus T"
    assert user.profile.avatar_url == "https://avatars.githubusercontent.example/u/4242"
    (user_call,) = fake_http.called("GET", "https://api.github.com/user")
    assert user_call.headers["Authorization"] == "token gh-token"


@pytest.mark.django_db
def test_github_without_a_name_uses_the_login(client, configure_providers, fake_http, landing):
    configure_providers("github")
    fake_github(fake_http, name=None)
    redirect = start_social_login(client, "/accounts/github/login/", landing)
    finish_social_login(client, "/accounts/github/login/callback/", redirect.query["state"])

    assert signed_in_user(client).profile.display_name == "octolinus"


@pytest.mark.django_db
def test_a_provider_without_an_email_goes_through_the_signup_form_and_keeps_next(
    client, configure_providers, fake_http, landing
):
    configure_providers("github")
    fake_github(fake_http, name="Linus T", emails=[])
    redirect = start_social_login(client, "/accounts/github/login/", landing)
    response = finish_social_login(
        client, "/accounts/github/login/callback/", redirect.query["state"]
    )

    assert response["Location"] == "/accounts/3rdparty/signup/"
    form = client.get("/accounts/3rdparty/signup/")
    assert form.status_code == 200
    assert b'class="auth-title auth-entrance"' in form.content
    response = client.post(
        "/accounts/3rdparty/signup/", {"email": "linus@example.org", "username": "linus"}
    )

    assert response.status_code == 302
    assert response["Location"] == landing
    user = User.objects.get(username="linus")
    assert user.profile.display_name == "Linus T"
    assert user.profile.avatar_url.startswith("https://avatars.githubusercontent.example/")


# ---- OpenID Connect --------------------------------------------------------------------------


@pytest.mark.django_db
def test_openid_connect_sign_up_uses_the_configured_server(
    client, configure_providers, fake_http, landing
):
    configure_providers("openid_connect")
    fake_http.add("GET", f"{OIDC_ISSUER}/.well-known/openid-configuration", OIDC_CONFIG)
    fake_http.add(
        "POST",
        OIDC_CONFIG["token_endpoint"],
        {
            "access_token": "oidc-token",
            "token_type": "Bearer",
            "id_token": id_token(OIDC_ISSUER, "oidc-client", sub="s-77", name="From Token"),
        },
    )
    fake_http.add(
        "GET",
        OIDC_CONFIG["userinfo_endpoint"],
        {
            "sub": "s-77",
            "name": "Marie Curie",
            "preferred_username": "mcurie",
            "email": "marie@example.edu",
            "email_verified": True,
            "picture": "https://id.example.edu/avatars/s-77.png",
        },
    )

    redirect = start_social_login(client, "/accounts/oidc/campus/login/", landing)
    assert redirect.base == OIDC_CONFIG["authorization_endpoint"]
    assert set(redirect.query["scope"].split()) == {"openid", "profile", "email"}
    response = finish_social_login(
        client, "/accounts/oidc/campus/login/callback/", redirect.query["state"]
    )

    assert response["Location"] == landing
    user = signed_in_user(client)
    assert user.profile.display_name == "Marie Curie"
    assert user.profile.avatar_url == "https://id.example.edu/avatars/s-77.png"
    assert SocialAccount.objects.get(user=user).provider == "campus"
    (token_call,) = fake_http.called("POST", OIDC_CONFIG["token_endpoint"])
    assert token_call.data["client_secret"] == "oidc-secret"
    assert token_call.data["code_verifier"]


# ---- Returning users, bad callbacks ----------------------------------------------------------


@pytest.mark.django_db
def test_a_returning_user_keeps_the_profile_they_edited(
    client, configure_providers, fake_http, landing
):
    configure_providers("github")
    fake_github(fake_http, name="Linus T")
    redirect = start_social_login(client, "/accounts/github/login/", landing)
    finish_social_login(client, "/accounts/github/login/callback/", redirect.query["state"])
    user = signed_in_user(client)
    user.profile.display_name = "Chosen name"
    user.profile.save()
    client.logout()

    redirect = start_social_login(client, "/accounts/github/login/", "/leaderboards/")
    response = finish_social_login(
        client, "/accounts/github/login/callback/", redirect.query["state"]
    )

    assert response["Location"] == "/leaderboards/"
    assert signed_in_user(client) == user
    user.profile.refresh_from_db()
    assert user.profile.display_name == "Chosen name"
    assert User.objects.count() == 2  # the landing project's owner and the volunteer


@pytest.mark.django_db
def test_a_callback_with_a_forged_state_signs_nobody_in(client, configure_providers, fake_http):
    configure_providers("github")
    fake_github(fake_http, name="Linus T")
    start_social_login(client, "/accounts/github/login/", "/")

    response = finish_social_login(client, "/accounts/github/login/callback/", "forged")

    assert response.status_code == 401
    assert b"Sign-in did not work" in response.content
    assert signed_in_user(client) is None
    assert fake_http.calls == []  # no token exchange for an unknown state


@pytest.mark.django_db
def test_next_pointing_to_another_site_is_ignored(client, configure_providers, fake_http):
    configure_providers("github")
    fake_github(fake_http, name="Linus T")
    redirect = start_social_login(client, "/accounts/github/login/", "https://evil.example/")
    response = finish_social_login(
        client, "/accounts/github/login/callback/", redirect.query["state"]
    )

    assert response.status_code == 302
    assert "evil.example" not in response["Location"]
    assert signed_in_user(client) is not None


@pytest.mark.django_db
def test_connecting_a_provider_fills_only_the_empty_profile_fields(
    client, user_factory, configure_providers, fake_http
):
    configure_providers("github")
    fake_github(fake_http, name="Linus T")
    user = user_factory("existing")
    user.profile.display_name = "Mine"
    user.profile.save()
    client.force_login(user)

    response = client.post("/accounts/github/login/?process=connect")
    assert response.status_code == 302
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    finish_social_login(client, "/accounts/github/login/callback/", state)

    user.profile.refresh_from_db()
    assert SocialAccount.objects.get(user=user).provider == "github"
    assert user.profile.display_name == "Mine"
    assert user.profile.avatar_url == "https://avatars.githubusercontent.example/u/4242"
