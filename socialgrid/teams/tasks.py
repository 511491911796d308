"""Celery tasks: thin wrappers over the team credit sweeps.

Both are idempotent and periodic, so a failed run is simply redone by the next beat tick.
"""

from __future__ import annotations

from celery import shared_task

from socialgrid.teams import credit


@shared_task
def sweep_team_credit() -> int:
    return credit.fold_team_credit()


@shared_task
def sweep_team_decay() -> int:
    return credit.decay_team_credit()
