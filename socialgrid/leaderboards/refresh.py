"""The periodic upkeep: prune old roll-ups and, on Redis, rebuild the cached boards."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from compute.models import Project
from socialgrid.leaderboards.backends import get_ranking
from socialgrid.leaderboards.boards import utc_day
from socialgrid.leaderboards.rollups import prune_period_credit
from socialgrid.leaderboards.sorted_sets import RedisRanking, cached_boards


def refresh_leaderboards(now: datetime | None = None) -> dict[str, int]:
    """Returns the number of roll-ups pruned and, on Redis, each rebuilt board's size."""
    now = now or timezone.now()
    project_ids = list(Project.objects.values_list("id", flat=True))
    result = {"pruned": prune_period_credit(utc_day(now), project_ids)}
    ranking = get_ranking()
    if isinstance(ranking, RedisRanking):
        result.update(ranking.rebuild(cached_boards(now)))
    return result
