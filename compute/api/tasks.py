"""Celery tasks of the owners' app: the daily statistics export."""

from __future__ import annotations

from django.utils import timezone

from celery import shared_task

from compute.api.stats_export import day_directory, default_directory, export_stats


@shared_task
def export_daily_stats() -> str:
    """Today's statistics files, once: the beat may run it more often than daily (the
    embedded beat runs every entry at start-up), and a second run the same day returns
    without writing."""
    now = timezone.now()
    target = day_directory(default_directory(), now)
    if target.exists():
        return str(target)
    return str(export_stats(now=now).directory)
