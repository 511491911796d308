"""Validation and assimilation as draining tasks, at most one of each queued at a time.

A result that completes a quorum asks for validation; a validation that finds a canonical
result asks for assimilation. Rather than one Celery task per work unit (which floods the
queue and pays a task's overhead per work unit), a request queues one *drain* task unless
one is already queued or running; the drain works through everything pending in batches,
then stops. The queued flag is a cache key the drain clears only once a pass finds nothing
(and then looks once more), so a request either finds a drain that will see its work unit
or queues a new one: nothing waits for the periodic sweeps, which remain as a safety net.
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


def drain(kind: str, budget: float = BUDGET_SECONDS, linger: float | None = None) -> int:
    """Validate (or assimilate) pending work units in batches until none is left or the
    budget is spent; then hand over to a fresh task so other queued tasks get their turn.

    While it runs, its queued flag stays set, so the results arriving meanwhile queue no
    other drain: this one finds their work units on its next pass. A pass that found less
    than a full batch is followed by a pause of ``linger`` seconds (DRAIN_LINGER_SECONDS),
    in which the next batch gathers: a trickle of results is validated a batch at a time,
    not a work unit at a time, each pass being a fixed handful of statements. Once a pass
    finds nothing, the flag is cleared and one more pass made: a request that came before
    the clear is seen by it, one after queues a new drain."""
    from compute import assimilation, validation

    if linger is None:
        linger = (
            0.0 if settings.CELERY_TASK_ALWAYS_EAGER else settings.COMPUTE["DRAIN_LINGER_SECONDS"]
        )
    full = validation.BATCH if kind == "validate" else assimilation.BATCH
    started = time.monotonic()
    done = 0
    while time.monotonic() - started < budget:
        n = _pass(kind)
        done += n
        if n == 0:
            cache.delete(QUEUED[kind])
            n = _pass(kind)
            done += n
            if n == 0:
                return done
        elif n < full and linger > 0:
            time.sleep(linger)
    cache.delete(QUEUED[kind])
    _request(kind)
    return done


def _pass(kind: str) -> int:
    from compute import assimilation, validation

    if kind == "validate":
        return len(validation.validate_pending(limit=validation.BATCH))
    return assimilation.assimilate_pending(limit=assimilation.BATCH)
