"""Leaderboard fixtures: credit granted through the engine's real ledger path."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

from django.db import transaction
from django.utils import timezone

import pytest

from compute import credit
from compute.models import Host, Project, Volunteer
from socialgrid.leaderboards.backends import get_ranking

_replicas = itertools.count(1_000_000)


@pytest.fixture(autouse=True)
def _database_backend(settings) -> Iterator[None]:
    """The database backend, uncached sizes; the Redis tests switch to their own prefix."""
    settings.LEADERBOARDS = {"BACKEND": "database"}
    get_ranking.cache_clear()
    yield
    get_ranking.cache_clear()


@pytest.fixture
def grant_credit(db) -> Callable[..., list[credit.Grant]]:
    """Grant ``amount`` to ``user`` in ``project`` the way validation does: one new replica,
    ``compute.credit.grant`` inside a transaction (which sends credit_granted)."""

    def grant(
        user,
        project: Project,
        amount: float,
        *,
        host: Host | None = None,
        now: datetime | None = None,
        replica_id: int | None = None,
    ) -> list[credit.Grant]:
        now = now or timezone.now()
        g = credit.Grant(
            replica_id=replica_id or next(_replicas),
            workunit_id=1,
            project_id=project.id,
            host_id=host.id if host else None,
            user_id=user.id if user else None,
            amount=amount,
            sent_at=now,
        )
        with transaction.atomic():
            return credit.grant([g], now)

    return grant


@pytest.fixture
def volunteer_factory(user_factory) -> Callable[..., object]:
    """A user with all-time credit set directly (ranking tests need no ledger)."""

    def make(total: float = 0.0, rac: float = 0.0, *, banned: bool = False, **kwargs):
        user = user_factory(**kwargs)
        Volunteer.objects.create(user=user, total_credit=total, rac=rac, banned=banned)
        return user

    return make


@pytest.fixture
def redis_ranking(redis_url: str, settings):
    """The Redis backend on a prefix of its own, emptied afterwards."""
    from socialgrid.leaderboards.sorted_sets import RedisRanking

    settings.REDIS_URL = redis_url
    settings.LEADERBOARDS = {
        "BACKEND": "redis",
        "REDIS_PREFIX": f"sg:lb:test:{uuid.uuid4().hex[:8]}",
    }
    get_ranking.cache_clear()
    ranking = get_ranking()
    assert isinstance(ranking, RedisRanking)
    yield ranking
    ranking.clear()
    get_ranking.cache_clear()
