"""The profile's "share my statistics" consent: off unless the volunteer ticks it."""

from __future__ import annotations

import pytest

from socialgrid.accounts.models import Profile

VALID = {"display_name": "Ada", "avatar_url": "", "bio": "", "privacy": "named"}


@pytest.mark.django_db
def test_nobody_shares_statistics_by_default(user_factory):
    assert Profile.objects.get(user=user_factory()).share_stats is False


@pytest.mark.django_db
def test_the_profile_form_has_a_labelled_checkbox(client, user_factory):
    client.force_login(user_factory())

    html = client.get("/profile/").content.decode()

    assert 'type="checkbox" name="share_stats"' in html
    assert '<label for="id_share_stats">' in html
    assert "statistics sites" in html


@pytest.mark.django_db
def test_ticking_and_unticking_the_box(client, user_factory):
    user = user_factory()
    client.force_login(user)

    client.post("/profile/", {**VALID, "share_stats": "on"})
    assert Profile.objects.get(user=user).share_stats is True

    client.post("/profile/", VALID)
    assert Profile.objects.get(user=user).share_stats is False
