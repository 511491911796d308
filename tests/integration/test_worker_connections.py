"""A Celery worker's kept database connection, cut by the server: the task that meets it
fails with the database's error, and the next task connects afresh."""

from __future__ import annotations

from django.db import OperationalError, connection

import psycopg
import pytest
from celery.signals import task_postrun

from compute import tasks
from compute.models import Project

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _terminate(pid: int) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(
        dbname=params["dbname"],
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _task_ends() -> None:
    """What a worker does after each task."""
    task = tasks.sweep_feeder
    task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None)


def test_a_cut_connection_is_replaced_after_the_task_that_met_it():
    first = _backend_pid()
    _task_ends()  # a healthy connection is kept between tasks
    assert _backend_pid() == first

    _terminate(first)
    with pytest.raises(OperationalError):
        Project.objects.exists()
    _task_ends()

    assert not Project.objects.exists()
    assert _backend_pid() != first


def test_without_the_check_every_later_task_meets_the_dead_connection():
    """Why: Celery keeps the connection (CELERY_DB_REUSE_MAX), and Django only replaces a
    broken one at the start of a web request."""
    _terminate(_backend_pid())
    for _ in range(3):
        with pytest.raises(OperationalError):
            Project.objects.exists()
    connection.close()
