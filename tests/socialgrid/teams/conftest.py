"""Fixtures for the team tests: teams, bans, and credit earned through the real engine."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta

from django.core.cache import cache

import pytest

from compute import submission
from compute.models import Replica, Volunteer
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.validation import validate_pending
from socialgrid.teams.membership import create_team
from socialgrid.teams.models import Team

_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings) -> None:
    # Rate-limit counters live in Django's cache, which outlives a test's database. A private
    # in-memory cache is emptied safely: on the integration level the default is the Redis
    # that Celery's broker shares, where clearing would flush the queues.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "socialgrid-teams-tests",
        }
    }
    cache.clear()


@pytest.fixture
def team_factory(user_factory) -> Callable[..., Team]:
    """A team founded by ``founder`` (a new user by default) through the real flow."""

    def make(name: str | None = None, *, founder=None, **kwargs) -> Team:
        return create_team(founder or user_factory(), name or f"Team {next(_seq)}", **kwargs)

    return make


@pytest.fixture
def ban() -> Callable[[object], None]:
    def make(user) -> None:
        Volunteer.objects.update_or_create(user=user, defaults={"banned": True})

    return make


@pytest.fixture
def earn(project_factory, host_factory) -> Callable[..., dict[int, float]]:
    """One work unit computed by one new host of each user, validated by the real engine.

    Returns the credit each user was granted for it.
    """
    project = project_factory()

    def run(*users) -> dict[int, float]:
        project.min_quorum = project.target_nresults = len(users)
        project.save()
        submission.create_batch(project, project.apps.get(), [{"x": 3}], name=f"b{next(_seq)}")
        replicas = []
        for user in users:
            host = host_factory(project, user=user)
            (a,) = lease_replicas(host, 1)
            # Leased long ago, so wall time does not limit the claim.
            Replica.objects.filter(id=a.replica_id).update(sent_at=a.deadline - timedelta(days=1))
            assert record_result(host, a.replica_id, a.lease_token, {"y": 9}, 10.0).accepted
            replicas.append(a.replica_id)
        assert all(v.outcome == "valid" for v in validate_pending())
        granted = Replica.objects.filter(id__in=replicas).values_list(
            "host__user_id", "granted_credit"
        )
        return dict(granted)

    return run
