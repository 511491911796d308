"""The bench's simulated volunteer against the real ASGI application on the embedded
defaults (uvicorn in the test's event loop, as in tests/compute/test_headless.py)."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async

from bench.harness.volunteers import SimVolunteer, Tally
from compute.catalog import catalog
from tests.compute.test_headless import Server, make_batch, until


@pytest_asyncio.fixture
async def server(transactional_db, settings):
    settings.PROTOCOL = {**settings.PROTOCOL, "RETRY_AFTER_SECONDS": 10}
    served = Server()
    await served.start()
    yield served
    await served.stop()


async def stop(task: asyncio.Task, within: float = 30) -> None:
    """Cancel until it ends: on Python 3.11 ``asyncio.wait_for`` loses a cancellation that
    arrives as its inner await completes, and the volunteer would carry on."""
    deadline = asyncio.get_running_loop().time() + within
    while not task.done():
        assert asyncio.get_running_loop().time() < deadline, "the volunteer did not stop"
        task.cancel()
        await asyncio.wait({task}, timeout=1)


@pytest.mark.asyncio
async def test_results_carry_the_requests_and_their_acks_bring_the_tasks(server, project_factory):
    project, _ = await make_batch(project_factory, [{"x": i} for i in range(6)], quorum=1)
    # The app is dispatchable before the volunteer asks: the process's catalog is invalidated
    # when the batch's project and app commit (compute.catalog), not only when they are saved.
    assert await sync_to_async(catalog.for_projects)({project.id})
    tally = Tally(volunteers=1)
    volunteer = SimVolunteer([server.url], project.slug, 0.3, 2, tally)
    running = asyncio.create_task(volunteer.run())
    try:
        await until(lambda: len(tally.acked) == 6, "six results acknowledged")
    finally:
        await stop(running)

    # Two tasks held: a request of its own to start (and a second of its own when a loaded
    # server's first answer brings only one of the two), then each result that left one
    # task asked for one more. The acks brought the rest; the fifth's had none left (an
    # empty answer, 10 s to wait), so the last result asked for nothing.
    assert tally.requests_on_results == 5
    assert tally.requests in (1, 2)
    assert (tally.tasks_assigned, tally.empty_assigns) == (6, 1)
    # A latency for each answer that brought work, and when it came (after the welcome).
    assert len(tally.lease_ms) == tally.requests + tally.requests_on_results - 1
    assert len(tally.lease_at) == len(tally.lease_ms)
    assert tally.last_welcome is not None
    assert tally.last_welcome <= tally.lease_at[0] <= tally.lease_at[-1]
    assert (tally.errors, tally.lost_requests) == ({}, 0)
