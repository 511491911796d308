"""Celery tasks of the feed: thin wrappers over socialgrid.feed.badges."""

from __future__ import annotations

from django.db import OperationalError

from celery import shared_task

from socialgrid.feed import badges


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def award_rac_badges() -> int:
    """Periodic (beat entry "feed-rac-badges"): the top 1/5/25 % by RAC. Idempotent."""
    return sum(badges.award_rac_badges().values())
