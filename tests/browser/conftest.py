"""Fixtures of the browser level: Chromium, platform servers in subprocesses, volunteers.

The level runs in its own pytest session (``pytest -m browser``; scripts/test_levels.py).
With SOCIALGRID_REQUIRE naming "browser", a missing Chromium fails the tests instead of
skipping them. A failed test's report carries the server logs and what each volunteer's
page received and logged.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.browser.server import LIVE_PLATFORMS, Platform
from tests.browser.volunteer import CHROMIUM, CHROMIUM_ARGS, LIVE_VOLUNTEERS, Volunteer

OpenVolunteer = Callable[..., Awaitable[Volunteer]]


@pytest.fixture(scope="session")
def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = (
        f"the browser level needs Chromium at {CHROMIUM} "
        "(apt-get install -y chromium, or point CHROMIUM at one)"
    )
    if "browser" in os.environ.get("SOCIALGRID_REQUIRE", "").split(","):
        pytest.fail(message)
    pytest.skip(message)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    """One Chromium per test module; each volunteer gets its own context in it."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="module")
def platforms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Platform]]:
    """Makes platforms with a migrated database (not started yet); stops each at the end."""
    made: list[Platform] = []

    def make(name: str) -> Platform:
        platform = Platform(tmp_path_factory.mktemp(name), name)
        made.append(platform)
        LIVE_PLATFORMS.append(platform)
        platform.manage("migrate", "-v0")
        return platform

    yield make
    for platform in made:
        platform.stop()
        LIVE_PLATFORMS.remove(platform)


@pytest_asyncio.fixture(loop_scope="module")
async def volunteers(browser: Browser) -> AsyncIterator[OpenVolunteer]:
    """Opens volunteers (``await volunteers(url, name, **context_options)``), closes them after."""
    opened: list[Volunteer] = []

    async def open_volunteer(url: str, name: str, **options: Any) -> Volunteer:
        volunteer = await Volunteer.open(browser, url, name, **options)
        opened.append(volunteer)
        return volunteer

    yield open_volunteer
    for volunteer in opened:
        await volunteer.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.failed:
        for platform in LIVE_PLATFORMS:
            title = f"server log: {platform.name} ({platform.base_url})"
            report.sections.append((title, platform.log_tail()))
        for volunteer in LIVE_VOLUNTEERS:
            report.sections.append((f"volunteer {volunteer.name}", volunteer.report()))
    return report
