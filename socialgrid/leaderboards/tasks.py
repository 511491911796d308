"""Celery task: a thin wrapper over the periodic upkeep.

Idempotent: a rebuild replaces each board wholesale and pruning deletes by date, so a
redelivered or overlapping run changes nothing more.
"""

from __future__ import annotations

from celery import shared_task

from socialgrid.leaderboards import refresh


@shared_task
def refresh_leaderboards() -> dict[str, int]:
    return refresh.refresh_leaderboards()
