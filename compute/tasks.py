"""Celery tasks: thin, idempotent wrappers over the domain functions.

Each task takes ids, calls one domain function that re-reads and guards its state, and can
therefore be delivered twice (late acknowledgement after a worker dies) without effect.
"""

from __future__ import annotations

from django.db import OperationalError

from celery import shared_task

from compute import (
    assimilation,
    cleanup,
    credit,
    demo_work,
    drains,
    feeder,
    transitioner,
    validation,
)

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


@shared_task(**RETRY)
def drain_validation() -> int:
    return drains.drain("validate")


@shared_task(**RETRY)
def drain_assimilation() -> int:
    return drains.drain("assimilate")


@shared_task(**RETRY)
def transition_workunits(workunit_ids: list[int]) -> int:
    for workunit_id in workunit_ids:
        transitioner.transition_workunit(workunit_id)
    return len(workunit_ids)


@shared_task
def sweep_transitioner() -> int:
    return transitioner.run_transitioner()


@shared_task
def sweep_feeder() -> dict[int, int]:
    return feeder.refill_all()


@shared_task
def sweep_validator() -> int:
    return len(validation.validate_pending())


@shared_task
def sweep_assimilator() -> int:
    return assimilation.assimilate_pending()


@shared_task
def sweep_credit_fold() -> int:
    return credit.fold_project_credit()


@shared_task
def sweep_credit_decay() -> int:
    return credit.decay_credit()


@shared_task
def sweep_cleanup() -> tuple[int, int]:
    return cleanup.run_cleanup()


@shared_task
def replenish_demo_work() -> dict[str, int]:
    return demo_work.replenish_demo_work()


@shared_task
def broadcast_project_stats() -> int:
    """Live counters for project pages; cheap aggregates, a few projects, every few seconds."""
    from compute import notify
    from compute.models import Project
    from compute.stats import project_stats

    projects = list(Project.objects.filter(is_public=True, is_active=True))
    for project in projects:
        notify.project_stats(project.id, project_stats(project))
    return len(projects)
