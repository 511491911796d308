"""The embeddable plugin on another site: the snippets from a project page, pasted into a
page on another origin, ask before computing, compute after "Yes, compute" and nothing after
"No thanks"; only the plugin page may be framed.

The platform is http://127.0.0.1:<port>; the other site, a tiny http.server, is
http://localhost:<other port>: another origin, and another site, so Chromium runs the frame
in a process of its own as it would on the web.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Frame

from socialgrid import csp
from tests.browser.server import Platform, fetch
from tests.browser.social_support import (
    OtherSite,
    People,
    Person,
    frame_at,
    response_headers,
    wait_in,
)
from tests.browser.support import in_thread, poll

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Two tiles of 80 x 80 each: hundredths of a second of CPU per task. One project per snippet,
# so each starts with no volunteer online.
FRAMED = {
    "slug": "framed",
    "name": "Framed Mandelbrot",
    "width": 160,
    "height": 80,
    "tile": 80,
    "max_iter": 1000,
}
SCRIPTED = {**FRAMED, "slug": "scripted", "name": "Scripted Mandelbrot"}
SANDBOX = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox"
VOLUNTEER_JS = "/static/socialgrid/volunteer.js"

BLOG = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog</title></head>
<body><h1>My blog</h1><p>Help this project from my page:</p>
{snippet}
<p>Thanks for reading.</p></body></html>"""

ONLINE = "Number(document.querySelector('[data-stat=online]').textContent)"
DONE = "Number(document.querySelector('[data-volunteer] [data-show=done]').textContent)"
PANEL = "document.querySelector('[data-plugin-panel]')"
PANEL_HIDDEN = f"{PANEL}.hidden && {PANEL}.inert"
# The plugin page's own measure of its height (static/socialgrid/plugin/plugin.js).
BODY_HEIGHT = """Math.ceil(document.body.getBoundingClientRect().bottom + window.scrollY
  + parseFloat(getComputedStyle(document.body).marginBottom || "0"))"""


@pytest.fixture(scope="module")
def platform(platforms: Callable[[str], Platform]) -> Platform:
    platform = platforms("plugin")
    platform.install_mandelbrot(**FRAMED)
    platform.install_mandelbrot(**SCRIPTED)
    platform.start()
    return platform


@pytest.fixture(scope="module")
def site() -> Iterator[OtherSite]:
    site = OtherSite()
    yield site
    site.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def people(browser: Browser) -> AsyncIterator[People]:
    crowd = People(browser)
    yield crowd
    await crowd.leave()


async def online(platform: Platform, slug: str) -> int:
    stats = json.loads(await in_thread(fetch, platform.url(f"/projects/{slug}/stats.json")))
    return stats["online"]


async def snippet(people: People, platform: Platform, slug: str, kind: str) -> str:
    """The snippet a site owner copies from the project page ("iframe" or "script")."""
    owner = await people.enter(f"site owner ({kind})")
    await owner.page.goto(platform.url(f"/projects/{slug}/"))
    heading = owner.page.locator("#embed-heading")
    assert await heading.inner_text() == "Put this project on your site"
    text = await owner.page.input_value(f"#snippet-{kind}")
    await owner.close()
    return text


async def visit(person: Person, url: str, embed_url: str, slug: str) -> Frame:
    """Open the other site's page; the plugin frame once its scripts run, before consent."""
    await person.page.goto(url)
    frame = await frame_at(person.page, embed_url)
    await poll(
        lambda: _opened(person, f"/ws/projects/{slug}/"),
        f"{person.name}: the plugin's live numbers socket (its scripts running)",
    )
    await frame.locator("[data-plugin-start]").wait_for(state="visible")
    assert await frame.evaluate(PANEL_HIDDEN), "the panel is hidden and inert before consent"
    return frame


async def _opened(person: Person, path: str) -> bool:
    return any(path in url for url in person.socket_urls)


async def ask(person: Person, frame: Frame, project_name: str) -> None:
    """Press the plugin's Start: the consent question, and still nothing computing."""
    await frame.click("[data-plugin-start]")
    question = frame.locator("#plugin-ask-text")
    await question.wait_for(state="visible")
    assert (await question.inner_text()).startswith(
        f"Compute for {project_name} in this browser tab?"
    )
    assert await frame.locator("[data-consent=yes]").inner_text() == "Yes, compute"
    assert await frame.locator("[data-consent=no]").inner_text() == "No thanks"
    assert_nothing_computed(person)


def assert_nothing_computed(person: Person) -> None:
    assert person.worker_sockets() == [], f"{person.name} opened a worker socket"
    assert person.requested_any(VOLUNTEER_JS) == [], f"{person.name} loaded the worker code"


async def consent_and_compute(person: Person, frame: Frame, platform: Platform, slug: str) -> None:
    """Say "Yes, compute": a task appears and finishes in the frame's panel, and the
    project's volunteers-online figure (in the frame, and stats.json) rises from 0."""
    assert await frame.evaluate(ONLINE) == 0, "nobody computes for the project yet"
    assert await online(platform, slug) == 0
    await frame.click("[data-consent=yes]")
    await poll(
        lambda: _welcomed(person), f"{person.name}'s worker socket to be welcomed", within=30
    )
    assert person.worker_sockets() == [platform.url("/ws/worker/").replace("http", "ws", 1)]
    await wait_in(frame, "window.__sgFirstTask", "a task in the plugin's panel")
    await wait_in(frame, f"{DONE} >= 1", "a task finished (Tasks done: 1)")
    assert not await frame.evaluate(PANEL_HIDDEN), "the panel shows once consented"
    assert person.received("assign"), "the server assigned work"
    assert [r for s in person.sockets for r in s.acked("result")], "a result was acknowledged"
    await wait_in(frame, f"{ONLINE} >= 1", "the plugin's 'Volunteers online' to rise to 1")
    assert await online(platform, slug) >= 1
    assert person.page_errors() == [], person.page_errors()


async def _welcomed(person: Person) -> bool:
    return bool(person.received("welcome"))


async def test_only_the_plugin_page_may_be_framed(
    platform: Platform, site: OtherSite, people: People
):
    embed = await in_thread(response_headers, platform.url(f"/embed/{FRAMED['slug']}/"))
    assert "x-frame-options" not in embed, embed
    (embed_policy,) = embed["content-security-policy"]
    assert csp.parse(embed_policy)["frame-ancestors"] == ["*"], embed

    project_url = platform.url(f"/projects/{FRAMED['slug']}/")
    project = await in_thread(response_headers, project_url)
    assert project["x-frame-options"] == ["DENY"], project
    (project_policy,) = project["content-security-policy"]
    assert csp.parse(project_policy)["frame-ancestors"] == ["'none'"], project

    # Framed anyway, the project page does not load: Chromium shows its error page instead.
    site.pages["/project-in-a-frame.html"] = BLOG.format(
        snippet=f'<iframe src="{project_url}" title="not allowed"></iframe>'
    )
    reader = await people.enter("reader")
    await reader.page.goto(site.url("/project-in-a-frame.html"))
    await poll(
        lambda: _refused(reader),
        "Chromium to refuse the framed project page (a console message)",
    )
    frames = reader.page.frames
    assert len(frames) == 2, [f.url for f in frames]
    assert frames[1].url != project_url, frames[1].url
    assert await frames[1].locator("[data-volunteer]").count() == 0
    assert reader.worker_sockets() == []


async def _refused(person: Person) -> bool:
    # Chromium names the header that refused: the policy's frame-ancestors, which takes
    # precedence, or X-Frame-Options.
    return any("frame-ancestors" in line or "X-Frame-Options" in line for line in person.console)


async def test_a_visitor_of_another_site_consents_in_the_iframe_and_computes(
    platform: Platform, site: OtherSite, people: People
):
    slug, name = FRAMED["slug"], FRAMED["name"]
    embed_url = platform.url(f"/embed/{slug}/")
    code = await snippet(people, platform, slug, "iframe")
    site.pages["/iframe.html"] = BLOG.format(snippet=code)
    page_url = site.url("/iframe.html")

    # One visitor says no: nothing loads, nothing computes.
    declines = await people.enter("declines")
    declined = await visit(declines, page_url, embed_url, slug)
    iframe = declines.page.locator("iframe")
    assert await iframe.get_attribute("src") == embed_url
    assert await iframe.get_attribute("sandbox") == SANDBOX
    assert await iframe.get_attribute("title") == f"{name} on socialgrid"
    await ask(declines, declined, name)
    await declined.click("[data-consent=no]")
    await declined.locator("[data-consent-declined]").wait_for(state="visible")
    assert await declined.locator("#plugin-ask").is_hidden()

    # Another says yes, and computes.
    consents = await people.enter("consents")
    frame = await visit(consents, page_url, embed_url, slug)
    await ask(consents, frame, name)
    await consent_and_compute(consents, frame, platform, slug)

    # Meanwhile the one who said no still computes nothing.
    assert_nothing_computed(declines)
    assert declines.page_errors() == [], declines.page_errors()
    assert await declined.evaluate(PANEL_HIDDEN)
    assert await declined.evaluate("window.__sgFirstTask ?? null") is None


async def test_the_script_snippet_puts_the_plugin_on_the_page_and_it_computes(
    platform: Platform, site: OtherSite, people: People
):
    slug, name = SCRIPTED["slug"], SCRIPTED["name"]
    embed_url = platform.url(f"/embed/{slug}/")
    code = await snippet(people, platform, slug, "script")
    site.pages["/script.html"] = BLOG.format(snippet=f"<div>{code}</div>")

    visitor = await people.enter("visitor")
    frame = await visit(visitor, site.url("/script.html"), embed_url, slug)
    # embed.js put the frame right after its own tag.
    iframe = visitor.page.locator("script[data-project] + iframe")
    assert await iframe.get_attribute("src") == embed_url
    assert await iframe.get_attribute("sandbox") == SANDBOX
    assert await iframe.get_attribute("title") == f"{name} on socialgrid"
    assert visitor.requested_any(platform.url("/static/socialgrid/plugin/embed.js"))

    await ask(visitor, frame, name)
    await consent_and_compute(visitor, frame, platform, slug)

    # The frame fits the plugin page, now with the panel shown (embed.js follows the
    # heights the page reports).
    async def fitted() -> tuple[int, int] | None:
        wanted = min(1400, max(200, await frame.evaluate(BODY_HEIGHT)))
        height = int(await iframe.get_attribute("height") or 0)
        return (height, wanted) if height == wanted else None

    height, _ = await poll(fitted, "the frame's height to fit the plugin page", within=10)
    assert height > 300, height
