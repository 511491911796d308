"""Cross-site request forgery: every form a browser session posts needs the CSRF token.

``FORMS`` lists every URL that takes a POST from a signed-in browser, with a role allowed to
post there, the page that shows its form and the data it sends. With Django's CSRF checks
on, a POST without the token is refused (403) and changes nothing; the same POST with the
token taken from the form's page succeeds. Guards: every browser POST of the authorisation
matrix has a row here, and every view exempt from the CSRF check is listed with the reason.
The owners' API is exempt by design: it authenticates with bearer keys, never cookies, so a
session alone gets nowhere there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

import pytest

from compute.models import Project
from tests.socialgrid.test_authorisation_matrix import (
    ANONYMOUS,
    HTTP_MATRIX,
    World,
    build_world,
    changed_tables,
    snapshot,
    walk,
)

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass(frozen=True)
class Form:
    pattern: str
    role: str  # who may post it
    page: str  # where its form is
    action: str  # where it posts
    data: Callable[[World], dict[str, Any]] = lambda w: {}
    status: int = 302  # what the POST with the token gets
    has_form: bool = True  # False: no page posts there (the token comes from ``page``)


def _challenge(w: World) -> dict[str, Any]:
    start = timezone.now() + timedelta(days=1)
    return {
        "name": "Summer race",
        "description": "",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        "teams": "early-birds",
    }


TEAM = "/teams/{team.slug}/"
FORMS = [
    Form(
        "accounts:edit_profile",
        "volunteer",
        "/profile/",
        "/profile/",
        lambda w: {"display_name": "Vee", "privacy": "named", "bio": ""},
    ),
    Form(
        "invites:send_email",
        "volunteer",
        "/invite/",
        "/invite/email/",
        lambda w: {"addresses": "friend@example.org", "message": "hi"},
    ),
    # No page posts by username any more (profiles use the id), but the URL still works.
    Form(
        "friends:send_request",
        "volunteer",
        "/friends/",
        "/friends/request/milo/",
        has_form=False,
    ),
    Form(
        "friends:send_request_by_id",
        "volunteer",
        "/u/anonymous/{member.pk}/",
        "/friends/request/id/{member.pk}/",
    ),
    Form(
        "friends:accept",
        "volunteer",
        "/friends/",
        "/friends/requests/{friend_request.pk}/accept/",
    ),
    Form(
        "friends:decline",
        "volunteer",
        "/friends/",
        "/friends/requests/{friend_request.pk}/decline/",
    ),
    Form(
        "friends:cancel",
        "founder",
        "/friends/",
        "/friends/requests/{friend_request.pk}/cancel/",
    ),
    Form("friends:remove", "volunteer", "/friends/", "/friends/remove/{friend.pk}/"),
    Form(
        "teams:new",
        "volunteer",
        "/teams/new/",
        "/teams/new/",
        lambda w: {"name": "Larks", "description": "", "url": ""},
    ),
    Form(
        "teams:edit",
        "founder",
        TEAM + "edit/",
        TEAM + "edit/",
        lambda w: {"description": "New words", "url": ""},
    ),
    Form("teams:join", "volunteer", TEAM, TEAM + "join/"),
    Form("teams:quit", "member", TEAM, TEAM + "quit/"),
    Form("teams:transfer", "founder", TEAM, TEAM + "founder/", lambda w: {"user": w.member.pk}),
    Form("teams:remove", "founder", TEAM, TEAM + "remove/", lambda w: {"user": w.member.pk}),
    Form(
        "teams:challenge_new",
        "founder",
        "/teams/challenges/new/",
        "/teams/challenges/new/",
        _challenge,
    ),
    *[
        Form("compute:membership", "founder", "/projects/{project.slug}/", f"/projects/alpha/{a}/")
        for a in ("join",)
    ],
    Form("compute:membership", "volunteer", "/projects/{project.slug}/", "/projects/alpha/pause/"),
    Form(
        "owners:tokens",
        "owner",
        "/owners/tokens/",
        "/owners/tokens/",
        lambda w: {"name": "laptop"},
    ),
    Form(
        "owners:revoke_token",
        "owner",
        "/owners/tokens/",
        "/owners/tokens/{owner_token.pk}/revoke/",
    ),
    # Signing in, out and up, and the account pages (django-allauth).
    Form(
        "account_login",
        ANONYMOUS,
        "/accounts/login/",
        "/accounts/login/",
        lambda w: {"login": "vera", "password": "pw"},
    ),
    Form(
        "account_signup",
        ANONYMOUS,
        "/accounts/signup/",
        "/accounts/signup/",
        lambda w: {
            "email": "new@example.org",
            "username": "newcomer",
            "password1": "a long enough passphrase 42",
            "password2": "a long enough passphrase 42",
        },
    ),
    Form("account_logout", "volunteer", "/accounts/logout/", "/accounts/logout/"),
    Form(
        "account_change_password",
        "volunteer",
        "/accounts/password/change/",
        "/accounts/password/change/",
        lambda w: {
            "oldpassword": "pw",
            "password1": "another long passphrase 43",
            "password2": "another long passphrase 43",
        },
    ),
    Form(
        "account_reauthenticate",
        "volunteer",
        "/accounts/reauthenticate/",
        "/accounts/reauthenticate/",
        lambda w: {"password": "pw"},
    ),
    Form(
        "account_email",
        "volunteer",
        "/accounts/email/",
        "/accounts/email/",
        lambda w: {"action_add": "", "email": "second@example.org"},
    ),
    # The admin's forms too.
    Form(
        "admin:teams_challenge_delete",
        "staff",
        "/admin/teams/challenge/{challenge.pk}/delete/",
        "/admin/teams/challenge/{challenge.pk}/delete/",
        lambda w: {"post": "yes"},
    ),
]

# Views that take a POST without a CSRF token, and why that is safe.
CSRF_EXEMPT = {
    "plugin:facebook": "Facebook's canvas POST is signed with the app secret, which stands in "
    "for the token (tested below)",
    "google_login_by_token": "allauth's Google One Tap: the posted ID token is verified with "
    "Google (tests/socialgrid/accounts)",
    **dict.fromkeys(
        (
            "api:projects",
            "api:create_project",
            "api:project",
            "api:update_project",
            "api:apps",
            "api:update_app",
            "api:create_app",
            "api:create_version",
            "api:submit_batch",
            "api:submit_sweep",
            "api:project_batches",
            "api:batch",
            "api:cancel_batch",
            "api:batch_results",
        ),
        "the owners' API: bearer keys only, never cookies (tested below)",
    ),
}


def test_every_csrf_exempt_view_is_listed():
    exempt = {key for key, _, view in walk(get_resolver()) if getattr(view, "csrf_exempt", False)}
    assert exempt == set(CSRF_EXEMPT)


def test_every_browser_post_of_the_matrix_has_a_form_row():
    posts = {
        row.pattern
        for row in HTTP_MATRIX
        if row.method == "POST" and not row.api and row.pattern not in CSRF_EXEMPT
    }
    assert posts - {form.pattern for form in FORMS} == set()


@pytest.fixture
def world(user_factory, project_factory, settings) -> World:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "socialgrid-csrf",
        }
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return build_world(user_factory, project_factory)


def browser(world: World, role: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    if role != ANONYMOUS:
        client.force_login(world.user(role) if role != "member" else world.member)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("form", FORMS, ids=lambda f: f"{f.pattern} {f.action}")
def test_a_post_without_the_token_is_refused_and_with_it_succeeds(form: Form, world: World):
    client = browser(world, form.role)
    page = client.get(form.page.format(**vars(world)))
    assert page.status_code == 200
    html = page.content.decode()
    action = form.action.format(**vars(world))
    if form.has_form:
        assert f'action="{action}"' in html or form.page == form.action, "no form posts there"
    (token, *_) = TOKEN.findall(html) or [None]
    assert token, "the form page carries no CSRF token"
    data = form.data(world)

    before = snapshot()
    refused = client.post(action, data)
    assert refused.status_code == 403
    assert b"CSRF" in refused.content
    assert changed_tables(before, snapshot()) == set()

    accepted = client.post(action, {**data, "csrfmiddlewaretoken": token})
    assert accepted.status_code == form.status
    if form.pattern == "account_login":
        assert client.session["_auth_user_id"] == str(world.volunteer.pk)
    elif form.pattern == "account_logout":
        assert "_auth_user_id" not in client.session
    elif form.pattern == "account_reauthenticate":
        methods = client.session["account_authentication_methods"]
        assert methods[-1]["method"] == "password"
    else:
        assert changed_tables(before, snapshot()) != set()


@pytest.mark.django_db
def test_a_token_in_the_header_works_as_well(world: World):
    client = browser(world, "volunteer")
    client.get("/friends/")
    token = client.cookies["csrftoken"].value
    response = client.post(f"/friends/remove/{world.friend.pk}/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302


@pytest.mark.django_db
def test_another_sessions_token_is_refused(world: World):
    mine = browser(world, "volunteer")
    mine.get("/friends/")
    theirs = browser(world, "founder")
    theirs.get("/friends/")
    stolen = theirs.cookies["csrftoken"].value
    before = snapshot()
    response = mine.post(f"/friends/remove/{world.friend.pk}/", {"csrfmiddlewaretoken": stolen})
    assert response.status_code == 403
    assert changed_tables(before, snapshot()) == set()


# --- the owners' API: bearer keys only ------------------------------------------------------


@pytest.mark.django_db
def test_a_signed_in_session_alone_cannot_use_the_api(world: World):
    client = browser(world, "owner")
    client.get("/owners/tokens/")
    token = client.cookies["csrftoken"].value
    before = snapshot()
    for headers in ({}, {"HTTP_X_CSRFTOKEN": token}):
        assert client.get("/api/projects", **headers).status_code == 401
        created = client.post(
            "/api/projects",
            json.dumps({"slug": "forged", "name": "Forged"}),
            content_type="application/json",
            **headers,
        )
        assert created.status_code == 401
        cancelled = client.post(f"/api/batches/{world.batch.pk}/cancel", **headers)
        assert cancelled.status_code == 401
    assert changed_tables(before, snapshot()) == set()
    assert not Project.objects.filter(slug="forged").exists()


@pytest.mark.django_db
def test_the_api_needs_no_csrf_token_with_a_bearer_key(world: World):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/projects",
        json.dumps({"slug": "keyed", "name": "Keyed"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.keys['owner']}",
    )
    assert response.status_code == 201


@pytest.mark.django_db
def test_the_facebook_canvas_post_needs_a_valid_signature(world: World, settings):
    settings.FACEBOOK_APP_SECRET = "app-secret"
    client = Client(enforce_csrf_checks=True)
    response = client.post("/embed/facebook/?project=alpha", {"signed_request": "forged.sig"})
    assert response.status_code == 400
