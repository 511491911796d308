"""Validation and assimilation as draining tasks, at most one of each queued at a time.

A result that completes a quorum asks for validation; a validation that finds a canonical
result asks for assimilation. Rather than one Celery task per work unit (which floods the
queue and pays a task's overhead per work unit), a request queues one *drain* task unless
one is already queued; the drain works through everything pending in batches, then stops.
The queued flag is a cache key the drain clears before each pass, so a request that comes
after a pass started always queues another drain: nothing waits for the periodic sweeps,
which remain as a safety net.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

QUEUED = {"validate": "sg:drain:validate", "assimilate": "sg:drain:assimilate"}
# A queued flag older than this is stale (its task was lost with a worker): re-queue.
FLAG_SECONDS = 30
BUDGET_SECONDS = 5.0


def request_validation() -> None:
    _request("validate")


def request_assimilation() -> None:
    _request("assimilate")


def _request(kind: str) -> None:
    from compute import tasks

    task = tasks.drain_validation if kind == "validate" else tasks.drain_assimilation
    if settings.CELERY_TASK_ALWAYS_EAGER or cache.add(QUEUED[kind], 1, timeout=FLAG_SECONDS):
        task.delay()


def drain(kind: str, budget: float = BUDGET_SECONDS) -> int:
    """Validate (or assimilate) pending work units in batches until none is left or the
    budget is spent; then hand over to a fresh task so other queued tasks get their turn."""
    from compute import assimilation, validation

    started = time.monotonic()
    done = 0
    while time.monotonic() - started < budget:
        cache.delete(QUEUED[kind])
        if kind == "validate":
            n = len(validation.validate_pending(limit=validation.BATCH))
        else:
            n = assimilation.assimilate_pending(limit=assimilation.BATCH)
        done += n
        if n == 0:
            return done
    _request(kind)
    return done
