"""The leaderboards' settings, with their defaults in one place.

A deployment overrides any of them with a ``LEADERBOARDS`` dict in the Django settings;
they are read on every call so tests can change them with pytest-django's ``settings``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # "redis" or "database"; empty: Redis when REDIS_URL is set, else the database.
    "BACKEND": "",
    "PAGE_SIZE": 50,
    # Key prefix of the sorted sets.
    "REDIS_PREFIX": "sg:lb",
    # A cached board whose last rebuild is older than this is ignored (the database answers)
    # so a stopped beat degrades to slower pages, never to stale ones.
    "REDIS_MAX_AGE_SECONDS": 3600,
    # Roll-ups older than this are deleted by the refresh task.
    "DAILY_RETENTION_DAYS": 35,
    "WEEKLY_RETENTION_WEEKS": 12,
}


def get(name: str) -> Any:
    overrides = getattr(settings, "LEADERBOARDS", {}) or {}
    return overrides.get(name, DEFAULTS[name])


def backend_name() -> str:
    chosen = get("BACKEND")
    if chosen:
        return chosen
    return "redis" if settings.REDIS_URL else "database"
