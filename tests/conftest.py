"""Factories and test-level selection.

Test levels: ``unit`` (embedded defaults, always), ``integration`` (PostgreSQL, Redis and a
Celery worker process) and ``browser`` (Debian's Chromium through Playwright). The Makefile
runs each level in its own pytest session; ``SOCIALGRID_REQUIRE`` names the levels whose
services must be present, so CI fails instead of skipping when one is missing.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable

from django.contrib.auth import get_user_model

import pytest

from compute import feeder
from compute.catalog import catalog
from compute.models import App, AppVersion, Host, Membership, Project

_seq = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = {s for s in os.environ.get("SOCIALGRID_REQUIRE", "").split(",") if s}
    for item in items:
        for level in ("integration", "browser"):
            if level in item.keywords and level not in required and not _selected(config, level):
                item.add_marker(pytest.mark.skip(reason=f"{level} level not selected (-m {level})"))


def _selected(config: pytest.Config, level: str) -> bool:
    return level in (config.getoption("-m") or "")


@pytest.fixture(autouse=True)
def _celery_mode_restored():
    """A test that runs Celery in-process puts it back: tasks run where the settings say for
    every later test (a leaked mode makes tasks run inside the dispatch writer's thread, after
    the answers that queued them)."""
    from django.conf import settings as django_settings

    from socialgrid.celery import app

    yield
    eager = app.conf.task_always_eager
    assert eager == django_settings.CELERY_TASK_ALWAYS_EAGER, "Celery's eager mode leaked"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # PBKDF2 costs ~0.2 s per user; tests create hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_error_logs(request: pytest.FixtureRequest):
    """Suites that drive hostile or abrupt clients (marked ``no_error_logs``) fail on any
    ERROR record or traceback: a client misbehaving or leaving is normal, never a server
    failure. A test that breaks the server on purpose says so (``error_logs_expected``)."""
    node = request.node
    marker = node.get_closest_marker("no_error_logs")
    if marker is None or node.get_closest_marker("error_logs_expected"):
        yield
        return
    # A suite whose client runs in the test's process names the client's loggers: what the
    # client says of a refusal is its own business.
    clients = tuple(marker.kwargs.get("clients", ()))
    caplog = request.getfixturevalue("caplog")
    yield
    records = [r for when in ("setup", "call", "teardown") for r in caplog.get_records(when)]
    bad = error_records(records, clients)
    assert not bad, f"ERROR records or tracebacks logged: {bad[:5]}"


def error_records(records: list[logging.LogRecord], clients: tuple[str, ...] = ()) -> list[str]:
    """The records at ERROR or above, or carrying a traceback, but the clients' own."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if (r.levelno >= logging.ERROR or r.exc_info)
        and not any(r.name == c or r.name.startswith(c + ".") for c in clients)
    ]


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    """Each test starts with an empty dispatch cache, a reloaded app catalog and an empty
    Django cache (rate-limit counters, rendered pictures)."""
    from django.core.cache import cache

    feeder.get_queue().clear()
    catalog.invalidate()
    cache.clear()


@pytest.fixture
def user_factory(db) -> Callable[..., object]:
    def make(username: str | None = None, **kwargs):
        username = username or f"user{next(_seq)}"
        kwargs.setdefault("email", f"{username}@example.org")
        return get_user_model().objects.create_user(username=username, password="pw", **kwargs)

    return make


@pytest.fixture
def project_factory(db, user_factory) -> Callable[..., Project]:
    """A project with one app ("square", reference tests.support.square) and a version."""

    def make(*, app_kwargs: dict | None = None, **kwargs) -> Project:
        n = next(_seq)
        kwargs.setdefault("slug", f"project-{n}")
        kwargs.setdefault("name", f"Project {n}")
        kwargs.setdefault("owner", user_factory())
        project = Project.objects.create(**kwargs)
        app_kwargs = {
            "name": "square",
            "title": "Square",
            "reference_path": "tests.support.square",
            **(app_kwargs or {}),
        }
        app = App.objects.create(project=project, **app_kwargs)
        AppVersion.objects.create(
            app=app, version=1, kernel="export function run(i) { return {y: i.x * i.x}; }"
        )
        catalog.invalidate()
        return project

    return make


@pytest.fixture
def host_factory(db, user_factory) -> Callable[..., Host]:
    """A host whose user has joined the given projects (an anonymous host with user=None)."""

    def make(*projects: Project, user=..., **kwargs) -> Host:
        if user is ...:
            user = user_factory()
        kwargs.setdefault("cores", 4)
        kwargs.setdefault("benchmark_fpops", 2e9)
        host = Host.objects.create(user=user, **kwargs)
        if user is not None:
            for project in projects:
                Membership.objects.get_or_create(user=user, project=project)
        return host

    return make


def _answers(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis of the integration level; missing Redis fails when the level is required."""
    from urllib.parse import urlsplit

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urlsplit(url)
    if not _answers(parts.hostname or "127.0.0.1", parts.port or 6379):
        message = f"Redis does not answer at {url}"
        if "integration" in os.environ.get("SOCIALGRID_REQUIRE", ""):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session", autouse=True)
def _close_async_thread_connections(django_db_setup, django_db_blocker):
    """Consumers reach the database from asgiref's executor threads, whose connections
    outlive the tests; on PostgreSQL they must be gone before the test database is dropped."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
