from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "socialgrid.settings")

app = Celery("socialgrid")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def close_broken_connections(task=None, **kwargs: object) -> None:
    """Workers keep their database connection between tasks (``CELERY_DB_REUSE_MAX``), so a
    connection the server dropped (a restart, an administrator, a network cut) would fail
    every later task. After each task, a connection that saw an error and no longer answers,
    or one past ``CONN_MAX_AGE``, is closed; the next task connects afresh. A healthy
    connection costs nothing here: it is only tested after an error.

    A task run eagerly (the embedded mode, tests) runs in its caller's connection, maybe
    inside the caller's transaction: that connection is the caller's to manage."""
    from django.db import connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
