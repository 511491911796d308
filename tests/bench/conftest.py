"""Services for the bench smoke tests: a database and a Redis database of their own, never
the benches' defaults, dropped and flushed afterwards."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.harness.services import drop_database, flush_redis


def _server_url(env_name: str, default: str, path: str) -> str:
    parts = urlsplit(os.environ.get(env_name) or default)
    return urlunsplit(parts._replace(path=path, query=""))


def _answers(url: str, port: int) -> bool:
    try:
        with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port or port), 1):
            return True
    except OSError:
        return False


@pytest.fixture
def services(request) -> Iterator[tuple[str, str]]:
    """(database URL, Redis URL) named by the test module's SMOKE_DATABASE and
    SMOKE_REDIS_DB; a missing service fails the run when the integration level is required."""
    name, redis_db = request.module.SMOKE_DATABASE, request.module.SMOKE_REDIS_DB
    database = _server_url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x", "/" + name)
    redis = _server_url("REDIS_URL", "redis://127.0.0.1:6379/0", f"/{redis_db}")
    missing = [u for u, port in ((database, 5432), (redis, 6379)) if not _answers(u, port)]
    if missing:
        message = f"the bench needs PostgreSQL and Redis: nothing answers at {missing}"
        if "integration" in os.environ.get("SOCIALGRID_REQUIRE", ""):
            pytest.fail(message)
        pytest.skip(message)
    yield database, redis
    drop_database(database)
    flush_redis(redis)
