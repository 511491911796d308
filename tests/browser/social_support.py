"""Helpers of the social browser tests (invites, the plugin): people in their own browser
contexts whose clicks, sockets and requests are noted, a site on another origin, share tags
and response headers, and the social scenario functions run in the platform's database."""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playwright.async_api import Browser, BrowserContext, Frame, Page, Request, WebSocket
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.browser.server import Platform, free_port
from tests.browser.support import poll
from tests.browser.volunteer import LIVE_VOLUNTEERS, OBSERVER, Volunteer


def call(platform: Platform, function: str, **kwargs: Any) -> Any:
    """Run ``tests.browser.social_scenario.<function>(**kwargs)`` in the platform's database."""
    code = f"from tests.browser import social_scenario; social_scenario.{function}(**{kwargs!r})"
    lines = platform.manage("shell", "-c", code).strip().splitlines()
    return json.loads(lines[-1])


# --- people ---------------------------------------------------------------------------------

# Every click a page (or frame) receives, reported to the test with the page's clock and
# address: what a person did, counted by the pages themselves rather than by the test.
CLICKS = """
document.addEventListener("click", (event) => {
  const target = event.target instanceof Element
    ? event.target.closest("a, button, input, summary, [role=button]") || event.target
    : null;
  const text = target ? (target.textContent || target.value || "").trim().slice(0, 40) : "";
  const label = target ? `${target.tagName.toLowerCase()} "${text}"` : "?";
  window.__sgClicked({ at: Date.now(), url: location.href, what: label, trusted: event.isTrusted });
}, true);
"""

# The page's clock when the first task appeared in the volunteer panel's list (tasks of a
# small work unit may come and go between two looks, so the page notes it).
FIRST_TASK = """
new MutationObserver((mutations, observer) => {
  if (document.querySelector("[data-volunteer] [data-tasks] li[data-replica]")) {
    window.__sgFirstTask = Date.now();
    observer.disconnect();
  }
}).observe(document, { subtree: true, childList: true });
"""


@dataclass(frozen=True)
class Click:
    at: float  # seconds since the epoch, the page's clock
    url: str
    what: str
    trusted: bool


class Person(Volunteer):
    """Someone in their own browser context, not on any page yet. Besides what a Volunteer
    keeps (worker sockets, console), it notes the address of every WebSocket and request of
    its pages and frames, and every click they receive."""

    def __init__(self, name: str, context: BrowserContext, page: Page) -> None:
        super().__init__(name, context, page)
        self.socket_urls: list[str] = []
        self.requested: list[str] = []
        self.clicks: list[Click] = []
        self.closed = False

    @classmethod
    async def enter(cls, browser: Browser, name: str, **options: Any) -> Person:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = await browser.new_context(**options)
        page = await context.new_page()
        person = cls(name, context, page)
        LIVE_VOLUNTEERS.append(person)
        await context.expose_binding("__sgClicked", person._clicked)
        for script in (OBSERVER, FIRST_TASK, CLICKS):
            await context.add_init_script(script=script)
        page.on("websocket", person._watch_any)
        page.on("request", person._requested)
        page.on("console", lambda m: person.console.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: person.console.append(f"page error: {e}"))
        return person

    def _clicked(self, source: Any, click: dict[str, Any]) -> None:
        self.clicks.append(Click(click["at"] / 1000, click["url"], click["what"], click["trusted"]))

    def _watch_any(self, ws: WebSocket) -> None:
        self.socket_urls.append(ws.url)
        self._watch(ws)  # a worker socket's messages, as a Volunteer keeps them

    def _requested(self, request: Request) -> None:
        self.requested.append(request.url)

    def page_errors(self) -> list[str]:
        """Uncaught exceptions and console errors of its pages and frames."""
        return [line for line in self.console if line.startswith(("page error", "console.error"))]

    def worker_sockets(self) -> list[str]:
        return [url for url in self.socket_urls if "/ws/worker/" in url]

    def requested_any(self, fragment: str) -> list[str]:
        return [url for url in self.requested if fragment in url]

    async def first_task_at(self, frame: Page | Frame | None = None) -> float | None:
        """When the first task appeared in the panel (seconds since the epoch), or None."""
        at = await (frame or self.page).evaluate("window.__sgFirstTask ?? null")
        return None if at is None else at / 1000

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await super().close()

    def report(self) -> str:
        lines = [super().report(), f"sockets opened: {self.socket_urls}"]
        lines.append(f"clicks: {[(c.what, c.url) for c in self.clicks]}")
        lines.append(f"requests ({len(self.requested)}), the last 20:")
        lines += [f"  {url}" for url in self.requested[-20:]]
        return "\n".join(lines)


class People:
    """The people of one test; their contexts are closed at the end."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.entered: list[Person] = []

    async def enter(self, name: str, **options: Any) -> Person:
        person = await Person.enter(self.browser, name, **options)
        self.entered.append(person)
        return person

    async def leave(self) -> None:
        for person in self.entered:
            await person.close()


async def wait_in(
    frame: Page | Frame, condition: str, what: str, within: float = 30, **variables: Any
) -> Any:
    """Wait until a JavaScript expression is true in a page or frame; fail saying ``what``."""
    try:
        handle = await frame.wait_for_function(
            f"() => ({condition})", timeout=within * 1000, polling=100
        )
    except PlaywrightTimeout:
        raise AssertionError(
            f"timed out after {within:.0f} s waiting for {what} in {frame.url}"
        ) from None
    return await handle.json_value()


async def frame_at(page: Page, url: str, within: float = 30) -> Frame:
    """The frame of ``page`` showing ``url``, once its document has loaded."""

    async def find() -> Frame | None:
        return next((f for f in page.frames if f.url == url), None)

    frame = await poll(find, f"a frame showing {url} in {page.url}", within)
    await frame.wait_for_load_state("load")
    return frame


# --- other sites and plain HTTP -------------------------------------------------------------


class OtherSite:
    """A web site on another origin than the platform's (http://localhost:<port> while the
    platform is http://127.0.0.1:<port>) serving the pages a test puts in ``pages``."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.port = free_port()
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                if self.path == "/favicon.ico":  # none, and no 404 in the console for it
                    self.send_response(204)
                    self.end_headers()
                    return
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def response_headers(url: str, timeout: float = 10) -> dict[str, list[str]]:
    """A GET's response headers, by lower-case name (each with all its values)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        headers: dict[str, list[str]] = {}
        for name, value in response.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        return headers


class _MetaTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = dict(attrs)
        name = values.get("property") or values.get("name")
        if name and values.get("content") is not None:
            self.tags.setdefault(name, values["content"] or "")


def meta_tags(html: str) -> dict[str, str]:
    """A page's <meta> tags: property (Open Graph) or name (Twitter card, description) to
    content."""
    parser = _MetaTags()
    parser.feed(html)
    return parser.tags
