"""Phones: Start (or Resume) on the first screen of the project and invite pages, and every
action of the desktop header reachable from the phone header, signed in or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.async_api import Browser, Page

from tests.browser.server import Platform
from tests.browser.social_support import call

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
ADA = {"username": "ada", "email": "ada@example.org", "password": "quartz-meadow-9-lantern"}
MANDELBROT = {
    "slug": "mandelbrot",
    "name": "Mandelbrot test",
    "width": 160,
    "height": 80,
    "tile": 80,
    "max_iter": 1000,
}

# The header's actions a person can reach: the links and buttons showing, after opening
# every menu of the bar (as a tap on "Menu" does), by where they lead.
HEADER_ACTIONS = """() => {
  const header = document.querySelector(".site-header");
  for (const menu of header.querySelectorAll("details")) menu.open = true;
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const actions = [...header.querySelectorAll("a[href], button, form[action]")]
    .filter((e) => shown(e.closest("form") || e))
    .map((e) => {
      const to = e.tagName === "FORM" ? e.action : e.closest("form")?.action || e.href;
      return to ? new URL(to, location.href).pathname : null;
    })
    .filter(Boolean);
  return [...new Set(actions)].sort();
}"""


@pytest.fixture(scope="module")
def platform(platforms: Callable[[str], Platform]) -> Platform:
    platform = platforms("phones")
    platform.install_mandelbrot(**MANDELBROT)
    call(platform, "create_user", **ADA)
    platform.start()
    return platform


async def signed_in(browser: Browser, platform: Platform, viewport: dict) -> Page:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await page.goto(platform.url("/accounts/login/?next=/"))
    await page.fill("input[name=login]", ADA["username"])
    await page.fill("input[name=password]", ADA["password"])
    await page.click("form button[type=submit]")
    await page.wait_for_url(platform.url("/"))
    return page


async def anonymous(browser: Browser, platform: Platform, viewport: dict) -> Page:
    context = await browser.new_context(viewport=viewport)
    return await context.new_page()


@pytest.mark.parametrize("who", [anonymous, signed_in], ids=["anonymous", "signed-in"])
async def test_the_phone_header_reaches_every_action_of_the_desktop_header(
    browser: Browser, platform: Platform, who
):
    reached = {}
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = await who(browser, platform, viewport)
        await page.goto(platform.url("/projects/mandelbrot/"))
        reached[name] = await page.evaluate(HEADER_ACTIONS)
        await page.context.close()
    assert reached["desktop"], "no actions found in the desktop header"
    missing = sorted(set(reached["desktop"]) - set(reached["phone"]))
    assert missing == [], f"on a phone the header cannot reach {missing}: {reached}"


async def first_screen_start(page: Page) -> dict:
    start = page.locator("[data-volunteer] [data-action=start]")
    await start.wait_for()
    return await start.bounding_box()


@pytest.mark.parametrize("who", [anonymous, signed_in], ids=["anonymous", "signed-in"])
async def test_start_is_on_the_first_screen_of_a_phone(browser: Browser, platform: Platform, who):
    page = await who(browser, platform, PHONE)
    invite = call(platform, "invite_link", inviter=ADA["username"], project="mandelbrot")["path"]
    for path in ("/projects/mandelbrot/", invite):
        await page.goto(platform.url(path))
        box = await first_screen_start(page)
        assert box["y"] + box["height"] <= PHONE["height"], f"Start below the screen on {path}"
    # Paused, Resume takes Start's place.
    await page.goto(platform.url("/projects/mandelbrot/"))
    await page.click("[data-volunteer] [data-action=start]")
    await page.click("[data-volunteer] [data-action=pause]")
    resume = page.locator("[data-volunteer] [data-action=resume]")
    await resume.wait_for()
    box = await resume.bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"], "Resume below the screen"
    await page.context.close()
