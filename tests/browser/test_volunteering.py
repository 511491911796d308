"""Two volunteers compute a Mandelbrot batch on the real platform, and the page fits a phone.

The platform runs as ``manage.py runplatform`` (embedded: SQLite, in-process Celery and
sweeps); the volunteers are anonymous visitors of the project page in their own browser
contexts, so each is its own host and together they meet the quorum of 2.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compute.examples import mandelbrot
from tests.browser.server import Platform, fetch
from tests.browser.support import grey_share, in_thread, poll
from tests.browser.volunteer import Volunteer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# 200 x 160 pixels in six tiles (80 x 80, the right column 40 wide): a few hundredths of a
# second of CPU each at 1000 iterations.
MANDELBROT = {
    "slug": "mandelbrot",
    "name": "Mandelbrot test",
    "width": 200,
    "height": 160,
    "tile": 80,
    "max_iter": 1000,
}
# Work for the layout test's volunteers that does not run out while they are looked at.
BUSY = {"slug": "busy", "name": "Busy", "width": 400, "height": 400, "tile": 100, "max_iter": 2000}
# A CPU share that stretches each task to a fraction of a second, so the progress bars and
# the picture move in visible steps; it also leaves the two cores to the server.
CPU_SHARE = 20

TASK_RUNNING = "root.querySelector('[data-tasks] li[data-replica] progress') !== null"
LIVE_PICTURE = "document.querySelector('img[data-live-image]').getAttribute('src')"
LIVE_STAT = "((name) => document.querySelector(`[data-stat=${name}]`).textContent)"


@pytest.fixture(scope="module")
def platform(platforms: Callable[[str], Platform]) -> Platform:
    platform = platforms("volunteering")
    platform.install_mandelbrot(**MANDELBROT)
    platform.install_mandelbrot(**BUSY)
    platform.start()
    return platform


def done_is(n: int) -> str:
    return f"root.querySelector('[data-show=done]').textContent === '{n}'"


async def watch_picture(url: str, shares: list[float]) -> None:
    """Fetch the picture every few tenths of a second; note each change in grey share."""
    while True:
        try:
            share = grey_share(await in_thread(fetch, url))
        except OSError:
            share = None  # a slow answer on a loaded machine: the next fetch will do
        if share is not None and (not shares or shares[-1] != share):
            shares.append(share)
        await asyncio.sleep(0.3)


async def test_two_volunteers_compute_a_batch_until_it_is_validated_and_drawn(
    platform: Platform, volunteers
):
    slug = MANDELBROT["slug"]
    batch_id, n = platform.installed[slug]["batch"], platform.installed[slug]["n"]
    picture_url = platform.url(f"/projects/{slug}/picture.png")
    before = await in_thread(fetch, picture_url)
    assert grey_share(before) == 1.0, "before any result the picture is all grey"

    a = await volunteers(platform.url(f"/projects/{slug}/"), "A")
    b = await volunteers(platform.url(f"/projects/{slug}/"), "B")
    assert (await a.page.evaluate(LIVE_PICTURE)).endswith(f"?v={batch_id}-0")

    shares: list[float] = []
    watcher = asyncio.create_task(watch_picture(picture_url, shares))
    try:
        for volunteer in (a, b):
            await volunteer.set_cpu(CPU_SHARE)
            await volunteer.press("start")  # the consent
        for volunteer in (a, b):
            await volunteer.wait_state("running")
            # Computing once a task is: before its first answer the line says it waits.
            await volunteer.wait_for(TASK_RUNNING, f"{volunteer.name}'s first task")
            panel = await volunteer.panel()
            assert panel["status"].startswith("Computing on"), panel
            assert panel["buttons"] == {
                "start": "hidden",
                "pause": "on",
                "resume": "hidden",
                "finish": "on",
            }
        await a.wait_for(TASK_RUNNING, "a task with a progress bar in the list")
        # Each host may hold one replica of a work unit, so each computes all n of them.
        for volunteer in (a, b):
            await volunteer.wait_for(done_is(n), f"{n} results acknowledged", within=120)
        finished = (
            f"{LIVE_PICTURE}.endsWith('?v={batch_id}-{n}')"
            f" && {LIVE_STAT}('batch_done') === '{n}'"
            f" && {LIVE_STAT}('results_today') === '{2 * n}'"
        )
        await a.wait_for(
            finished,
            f"the live counters and picture of the whole batch ({n} work units, {2 * n} results;"
            " stats are broadcast every second)",
            within=30,
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    # The progress bars: one per task, rising from 0 to 1 in steps; "Tasks done" counting
    # every acknowledged result.
    for volunteer in (a, b):
        seen = await volunteer.seen()
        assert [done for done in seen["done"] if done > 0] == list(range(1, n + 1)), seen["done"]
        progress: dict[str, list[float]] = seen["progress"]
        assert len(progress) == n, f"{volunteer.name} showed bars for {sorted(progress)}"
        for replica, values in progress.items():
            assert values == sorted(values), f"replica {replica}'s bar went back: {values}"
            assert values[0] < 0.5 < values[-1], f"replica {replica}'s bar: {values}"
        assert max(len(values) for values in progress.values()) >= 5, progress

    # On the server: every work unit validated by both hosts, assimilated, and exported.
    report = await in_thread(platform.call, "batch_report", batch_id=batch_id)
    assert report["state"] == "completed", report
    assert report["n_assimilated"] == n
    for workunit in report["workunits"]:
        assert workunit["canonical_replica_id"] is not None, workunit
        assert workunit["assimilate_state"] == "done", workunit
        assert workunit["error_mask"] == 0, workunit
    hosts = {a.host(), b.host()}
    assert len(hosts) == 2, "two browser contexts are two hosts"
    for workunit in report["workunits"]:
        replicas = [r for r in report["replicas"] if r["workunit_id"] == workunit["id"]]
        assert {r["host"] for r in replicas} == hosts, replicas
        assert {(r["outcome"], r["validate_state"]) for r in replicas} == {("success", "valid")}
    status = await in_thread(platform.status, slug)
    backlog = {k: status[k] for k in ("unsent", "in_progress", "need_validate", "assimilate_ready")}
    assert backlog == dict.fromkeys(backlog, 0), status
    assert (status["received"], status["validated"], status["assimilated"]) == (2 * n, n, n)
    rows = await in_thread(platform.export, batch_id)
    assert len(rows) == n
    smallest = min(rows, key=lambda row: row["input"]["w"] * row["input"]["h"])
    assert smallest["output"] == await in_thread(mandelbrot.run, smallest["input"])

    # The picture filled in: grey at first, in colour at the end, never going back.
    after = await in_thread(fetch, picture_url)
    assert after != before
    assert grey_share(after) == 0.0
    assert shares == sorted(shares, reverse=True), f"the grey share rose again: {shares}"
    pictures = [src for src, _ in (await a.seen())["pictures"]]
    versions = [int(src.rsplit("-", 1)[1]) for src in pictures]
    assert versions == sorted(versions), pictures
    assert versions[-1] == n
    print(f"picture: {len(shares)} grey shares seen {shares}; page showed versions {versions}")

    # Credit: granted per valid replica, announced live, shown in the panel.
    for volunteer in (a, b):
        host_total = report["host_credit"][volunteer.host()]
        assert host_total > 0
        await poll(
            lambda v=volunteer, total=host_total: _credited(v, total),
            f"{volunteer.name}'s credit messages to add up to {host_total}",
            within=20,
        )
        assert all(m["amount"] > 0 for m in volunteer.received("credit"))
        shown = (await volunteer.panel())["credit"]
        assert float(shown) == pytest.approx(host_total, rel=0.05), (shown, host_total)


async def _credited(volunteer: Volunteer, total: float) -> bool:
    credits = volunteer.received("credit")
    return bool(credits) and credits[-1]["host_total"] == pytest.approx(total, rel=1e-6)


PHONE = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

LAYOUT = """() => {
  const root = document.querySelector("[data-volunteer]");
  const edges = (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, width: r.width, height: r.height };
  };
  const overflowing = [...root.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map((el) => el.outerHTML.slice(0, 80));
  return {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    panel: edges(root),
    buttons: Object.fromEntries([...root.querySelectorAll("[data-action]")]
      .filter((b) => !b.hidden).map((b) => [b.dataset.action, edges(b)])),
    overflowing,
  };
}"""


@pytest.mark.parametrize(("screen", "options"), [("phone", PHONE), ("desktop", DESKTOP)])
async def test_the_panel_fits_the_screen_while_computing(
    platform: Platform, volunteers, tmp_path: Path, screen: str, options: dict[str, Any]
):
    volunteer = await volunteers(platform.url(f"/projects/{BUSY['slug']}/"), screen, **options)
    await volunteer.set_cpu(10)  # computing, lightly
    await volunteer.press("start")
    await volunteer.wait_state("running")
    await volunteer.wait_for(TASK_RUNNING, "a task with a progress bar in the list")

    shot = tmp_path / f"project-{screen}.png"
    await volunteer.page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    page = volunteer.page
    assert await page.locator("[data-volunteer]").is_visible()
    for action in ("pause", "finish"):
        assert await page.locator(f"[data-volunteer] [data-action={action}]").is_visible()
    layout = await page.evaluate(LAYOUT)
    width = layout["innerWidth"]
    assert width == options["viewport"]["width"]
    assert layout["scrollWidth"] <= width, f"the page scrolls sideways: {layout}"
    assert layout["panel"]["left"] >= 0, layout
    assert layout["panel"]["right"] <= width, layout
    assert set(layout["buttons"]) == {"pause", "finish"}, layout["buttons"]
    for action, edges in layout["buttons"].items():
        assert edges["width"] > 0, (action, edges)
        assert edges["height"] > 0, (action, edges)
        assert edges["left"] >= 0, (action, edges)
        assert edges["right"] <= width, (action, edges, width)
    assert layout["overflowing"] == [], layout["overflowing"]
