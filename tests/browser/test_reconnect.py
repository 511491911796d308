"""A volunteer rides out a server crash: the page reconnects by itself and finishes the
replicas it held, which count for the batch like any others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.browser.server import Platform
from tests.browser.support import in_thread, poll
from tests.browser.volunteer import Socket, Volunteer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Four tiles of 100 x 80 at 8000 iterations: a few tenths of a second of CPU each, so at a
# 10% CPU share a task runs for seconds, the server can be killed in the middle of one, and
# usually one is still running when the page reconnects.
MANDELBROT = {
    "slug": "mandelbrot",
    "name": "Mandelbrot test",
    "width": 200,
    "height": 160,
    "tile": 100,
    "max_iter": 8000,
}
PART_WAY = (
    "[...root.querySelectorAll('[data-tasks] li[data-replica] progress')]"
    ".some((bar) => bar.value > 0.05 && bar.value < 0.7)"
)


def welcomed_after(volunteer: Volunteer, since: float) -> Socket | None:
    for socket in volunteer.sockets:
        if socket.opened_at >= since and socket.of_type("welcome"):
            return socket
    return None


async def test_a_volunteer_reconnects_after_a_crash_and_completes_the_replicas_it_held(
    platforms: Callable[[str], Platform], volunteers, capsys: pytest.CaptureFixture[str]
):
    platform = platforms("reconnect")
    installed = await in_thread(platform.install_mandelbrot, **MANDELBROT)
    await in_thread(platform.start)
    page_url = platform.url(f"/projects/{MANDELBROT['slug']}/")

    a = await volunteers(page_url, "A")
    await a.set_cpu(10)
    await a.press("start")
    await a.wait_state("running")
    await a.wait_for(PART_WAY, "a task part-way through (progress between 0.05 and 0.7)")

    killed_at = time.time()
    await in_thread(platform.kill)
    await a.wait_state("reconnecting", within=30)
    assert (await a.panel())["status"].startswith("Reconnecting"), await a.panel()
    first = a.sockets[0]
    await asyncio.wait_for(first.closed.wait(), timeout=30)
    # Every frame of the dead socket is in: what it held is final now.
    held = a.held()
    assert held, f"A held no replica when the server died: {first.received}"

    restarted_at = time.time()
    boot = await in_thread(platform.start)
    await a.wait_state("running", within=90)
    running = [int(replica) for replica, _ in (await a.panel())["tasks"]]
    states = (await a.seen())["states"]
    reconnected_at = max(at for state, at in states if state == "running") / 1000
    seconds = reconnected_at - restarted_at
    with capsys.disabled():
        print(
            f"\nreconnect: the page was computing again {seconds:.1f} s after the restart "
            f"(server up after {boot:.1f} s, {restarted_at - killed_at:.1f} s after the kill); "
            f"held {sorted(held)}; tasks on the page just after: {running}"
        )

    again = welcomed_after(a, killed_at)
    assert again is not None, "no socket was welcomed after the restart"
    hello = next(m for m in again.sent if m.get("type") == "hello")
    assert hello["host"] == a.host() == first.of_type("welcome")[0]["host"], "the same host"
    resumed = {task["replica"] for task in again.of_type("welcome")[0]["resume"]}
    assert resumed == held, f"welcome.resume {resumed} is not what A held {held}"

    await a.set_cpu(100)
    await poll(
        lambda: _acknowledged(again, held),
        f"A's results for the replicas it held ({sorted(held)}) to be acknowledged",
        within=60,
    )
    sent = {m["replica"] for m in again.sent if m.get("type") == "result"}
    assert held <= sent, f"results sent after the reconnect {sent}, held {held}"

    # A second volunteer does the other replica of each work unit.
    b = await volunteers(page_url, "B")
    await b.press("start")
    n = installed["n"]
    for volunteer in (a, b):
        await volunteer.wait_for(
            f"root.querySelector('[data-show=done]').textContent === '{n}'",
            f"{n} results acknowledged",
            within=120,
        )

    report = await in_thread(platform.call, "batch_report", batch_id=installed["batch"])
    assert report["state"] == "completed", report
    assert report["n_assimilated"] == n
    by_id = {r["id"]: r for r in report["replicas"]}
    for replica in held:
        row = by_id[replica]
        assert (row["host"], row["outcome"], row["validate_state"]) == (
            a.host(),
            "success",
            "valid",
        ), row
    for workunit in report["workunits"]:
        assert workunit["assimilate_state"] == "done", workunit
        replicas = [r for r in report["replicas"] if r["workunit_id"] == workunit["id"]]
        assert {r["host"] for r in replicas} == {a.host(), b.host()}, replicas
        assert {r["validate_state"] for r in replicas} == {"valid"}, replicas


async def _acknowledged(socket: Socket, replicas: set[int]) -> bool:
    return replicas <= set(socket.acked("result"))
