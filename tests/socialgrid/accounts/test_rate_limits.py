"""Sign-in attempts are rate-limited by allauth (ACCOUNT_RATE_LIMITS): repeated failures for
one account are refused, even with the right password, without locking out other accounts."""

from __future__ import annotations

import pytest
from allauth.account import app_settings
from allauth.core.internal.ratelimit import parse_rates


def failures_allowed_per_account() -> int:
    (rate,) = [r for r in parse_rates(app_settings.RATE_LIMITS["login_failed"]) if r.per == "key"]
    return rate.amount


def sign_in(client, login: str, password: str):
    return client.post("/accounts/login/", {"login": login, "password": password})


@pytest.mark.django_db
def test_repeated_failed_sign_ins_are_refused_even_with_the_right_password(client, user_factory):
    user_factory("target")
    allowed = failures_allowed_per_account()
    for _ in range(allowed):
        response = sign_in(client, "target", "wrong")
        assert b"The username and/or password you specified are not correct" in response.content

    response = sign_in(client, "target", "pw")

    assert response.status_code == 200
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_limit_is_per_account(client, user_factory):
    user_factory("target")
    user_factory("bystander")
    for _ in range(failures_allowed_per_account() + 1):
        sign_in(client, "target", "wrong")

    response = sign_in(client, "bystander", "pw")

    assert response.status_code == 302
    assert "_auth_user_id" in client.session


@pytest.mark.django_db
def test_a_successful_sign_in_does_not_use_up_the_allowance(client, user_factory):
    user_factory("regular")
    for _ in range(failures_allowed_per_account() + 2):
        assert sign_in(client, "regular", "pw").status_code == 302
        client.logout()


@pytest.mark.django_db
def test_too_many_sign_in_posts_from_one_address_get_429(client, settings, user_factory):
    settings.ACCOUNT_RATE_LIMITS = {"login": "3/m/ip"}
    user_factory("someone")
    for _ in range(3):
        assert sign_in(client, "someone", "wrong").status_code == 200

    assert sign_in(client, "someone", "pw").status_code == 429


@pytest.mark.django_db
def test_the_configured_limits_guard_sign_in_and_sign_up():
    limits = app_settings.RATE_LIMITS
    assert limits["login_failed"]
    assert limits["login"]
    assert limits["signup"]
    assert failures_allowed_per_account() <= 10
