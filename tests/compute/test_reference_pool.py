"""The headless volunteer's process pool: closing it stops everything it started."""

from __future__ import annotations

import asyncio
import time

import pytest

from compute.headless.references import ReferencePool


@pytest.mark.asyncio
async def test_closing_the_pool_ends_its_workers_and_its_manager_thread():
    pool = ReferencePool(2)
    future, _generation = pool.submit("time.sleep", 60)
    executor = pool._pool
    deadline = time.monotonic() + 30
    while not any(p.is_alive() for p in (executor._processes or {}).values()):
        assert time.monotonic() < deadline, "no worker process started"
        await asyncio.sleep(0.05)
    processes = list(executor._processes.values())
    manager = executor._executor_manager_thread

    started = time.monotonic()
    pool.close()

    # At once, not after the minute the call would take.
    assert time.monotonic() - started < 15
    assert not any(p.is_alive() for p in processes)
    # The manager thread has closed the pool's pipes and ended before close returns: the
    # interpreter's exit hook writes to one of them, and racing that close gave "Bad file
    # descriptor" tracebacks at exit.
    assert not manager.is_alive()
    await asyncio.wait({future}, timeout=5)
    assert future.done()
    assert future.cancelled() or future.exception() is not None
