"""Sign-ups through allauth's real signup view, after visiting an invitation."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

import pytest

from compute.models import Membership
from socialgrid.invites.codes import get_invite_code
from socialgrid.invites.models import Referral
from socialgrid.invites.referrals import COOKIE_NAME, SESSION_KEY, attribute_signup

User = get_user_model()


@pytest.fixture
def inviter(user_factory):
    return user_factory(username="ada")


@pytest.fixture
def project(project_factory, inviter):
    project = project_factory(name="Primes")
    Membership.objects.create(user=inviter, project=project, rac=1.0)
    return project


def visit(client, inviter, project=None):
    code = get_invite_code(inviter, project)
    assert client.get(reverse("invites:landing", args=[code.code])).status_code == 200
    return code


def test_a_sign_up_after_the_landing_page_is_attributed_to_the_inviter(
    client, inviter, project, signup
):
    code = visit(client, inviter)
    response = signup(client, "newbie", next=project.get_absolute_url())
    recruit = User.objects.get(username="newbie")
    referral = recruit.referral
    assert (referral.inviter, referral.project, referral.invite_code) == (inviter, project, code)
    assert referral.counted_at is None
    assert referral.created_at is not None
    # Signed in and on the project page: the next click is Start.
    assert response.status_code == 302
    assert response["Location"] == project.get_absolute_url()
    assert client.get(response["Location"]).context["user"] == recruit
    assert SESSION_KEY not in client.session


def test_the_join_link_is_one_sign_up_form_away_from_the_project(client, inviter, project, signup):
    visit(client, inviter)
    page = client.get(reverse("invites:landing", args=[get_invite_code(inviter).code]))
    signup_link = f"{reverse('account_signup')}?next={project.get_absolute_url()}"
    assert f'href="{signup_link}"' in page.content.decode()
    # Click 1: the sign-up form (the page keeps next); click 2: Start on the project page.
    form = client.get(signup_link).content.decode()
    assert f'value="{project.get_absolute_url()}"' in form


def test_a_project_code_attributes_that_project(client, inviter, project_factory, signup):
    other = project_factory()
    visit(client, inviter, other)
    signup(client, "newbie")
    assert Referral.objects.get().project == other


def test_the_cookie_alone_is_enough_when_the_session_is_gone(client, inviter, project, signup):
    code = visit(client, inviter)
    cookie = client.cookies[COOKIE_NAME].value
    fresh = Client()
    fresh.cookies[COOKIE_NAME] = cookie
    signup(fresh, "later")
    referral = Referral.objects.get()
    assert (referral.recruit.username, referral.invite_code) == ("later", code)


def test_a_forged_cookie_is_ignored(client, inviter, project, signup):
    fresh = Client()
    fresh.cookies[COOKIE_NAME] = get_invite_code(inviter).code  # unsigned
    signup(fresh, "forger")
    assert User.objects.filter(username="forger").exists()
    assert not Referral.objects.exists()


def test_a_sign_up_without_an_invitation_is_not_attributed(client, db, signup):
    signup(client, "plain")
    assert User.objects.filter(username="plain").exists()
    assert not Referral.objects.exists()


def test_an_existing_account_signing_in_is_not_attributed(client, inviter, project, user_factory):
    existing = user_factory(username="old")
    visit(client, inviter)
    response = client.post(reverse("account_login"), {"login": "old", "password": "pw"})
    assert response.status_code == 302
    assert client.get("/invite/").context["user"] == existing
    assert not Referral.objects.exists()


def test_nobody_refers_themselves(rf, inviter, project):
    request = rf.get("/")
    request.session = {SESSION_KEY: {"code": get_invite_code(inviter).code, "project": None}}
    request.COOKIES = {}
    assert attribute_signup(request, inviter) is None
    assert not Referral.objects.exists()


def test_the_inviters_own_visit_leaves_nothing_to_attribute(client, inviter, project, signup):
    client.force_login(inviter)
    visit(client, inviter)
    client.logout()
    signup(client, "sockpuppet")
    assert not Referral.objects.exists()


def test_one_attribution_per_account(rf, inviter, project, user_factory):
    second_inviter = user_factory()
    recruit = user_factory()
    for who in (inviter, second_inviter):
        request = rf.get("/")
        request.session = {SESSION_KEY: {"code": get_invite_code(who).code, "project": None}}
        request.COOKIES = {}
        attribute_signup(request, recruit)
    assert list(Referral.objects.values_list("recruit", "inviter")) == [(recruit.pk, inviter.pk)]


def test_a_banned_inviters_code_attributes_nothing(client, inviter, project, signup):
    from compute.models import Volunteer

    visit(client, inviter)
    Volunteer.objects.create(user=inviter, banned=True)
    signup(client, "newbie")
    assert not Referral.objects.exists()
