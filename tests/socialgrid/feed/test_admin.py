"""The admin lists feed items and badges, for moderation."""

from __future__ import annotations

import pytest

from socialgrid.feed.models import BadgeKind, Verb
from socialgrid.feed.publishing import award, publish


@pytest.mark.parametrize("path", ["/admin/feed/feeditem/", "/admin/feed/badge/"])
def test_staff_can_list_items_and_badges(client, user_factory, path):
    admin = user_factory(is_staff=True, is_superuser=True)
    publish(admin, Verb.JOINED_TEAM, team_name="<b>T</b>")
    award(admin, BadgeKind.CREDIT, 10)
    client.force_login(admin)
    response = client.get(path)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
