"""Fixtures of the feed tests: friendships (the friends app is replaced by a small in-memory
relation, so these tests do not depend on its tables), bans and signed-in socket cookies."""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import cache
from django.test import Client

import pytest

from compute.models import Volunteer
from socialgrid.feed import badges, timeline


@pytest.fixture(autouse=True)
def _no_cached_thresholds() -> None:
    # The RAC thresholds outlive a test in the process's cache; each test starts without.
    cache.delete(badges.THRESHOLDS_CACHE_KEY)


@pytest.fixture
def befriend(monkeypatch) -> Callable[..., None]:
    pairs: set[frozenset[int]] = set()

    def friend_ids(user) -> set[int]:
        uid = user if isinstance(user, int) else user.pk
        return {other for pair in pairs if uid in pair for other in pair if other != uid}

    monkeypatch.setattr(timeline, "friend_ids", friend_ids)

    def make(a, b) -> None:
        pairs.add(frozenset((a.pk, b.pk)))

    return make


@pytest.fixture
def ban(db) -> Callable[..., None]:
    def make(user) -> None:
        Volunteer.objects.update_or_create(user=user, defaults={"banned": True})

    return make


@pytest.fixture
def session_cookie() -> Callable[..., str]:
    def make(user) -> str:
        http = Client()
        http.force_login(user)
        return f"sessionid={http.cookies['sessionid'].value}"

    return make
