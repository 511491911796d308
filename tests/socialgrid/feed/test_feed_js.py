"""static/socialgrid/feed.js in Chromium, with a stand-in WebSocket: live items go on top as
text (never HTML), links only to this site's paths, each item once, no reconnect after 4001."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

PAGE = """<!doctype html><html lang="en"><title>feed</title>
<section data-feed data-socket-path="/ws/feed/">
  <p data-feed-status role="status"></p>
  <ol data-feed-list><li id="feed-item-1" data-item-id="1"><p>old</p></li></ol>
  <div data-feed-empty hidden>empty</div>
</section>
<script type="module" src="/static/socialgrid/feed.js"></script>
"""

# Every socket the page opens is recorded; tests push messages and closes through it.
FAKE_SOCKET = """
window.sockets = [];
window.alerted = false;
window.alert = () => { window.alerted = true; };
class FakeSocket extends EventTarget {
  constructor(url) { super(); this.url = url; window.sockets.push(this); }
  deliver(message) {
    this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(message) }));
  }
  shut(code) { this.dispatchEvent(new CloseEvent("close", { code })); }
  close() {}
}
window.WebSocket = FakeSocket;
"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("feed-site")
    (root / "static").symlink_to(ROOT / "static")
    (root / "feed.html").write_text(PAGE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site):
    page = browser.new_page()
    page.add_init_script(FAKE_SOCKET)
    page.goto(f"{site}/feed.html")
    page.wait_for_function("window.sockets.length === 1")
    yield page
    page.close()


def deliver(page, item: dict[str, Any]) -> None:
    page.evaluate("(item) => window.sockets.at(-1).deliver({type: 'item', item})", item)


def item(id: int, *parts: dict[str, str], verb: str = "joined_team") -> dict[str, Any]:
    return {
        "id": id,
        "verb": verb,
        "text": "".join(p["text"] for p in parts),
        "parts": list(parts),
        "created_at": "2026-01-02T03:04:05+00:00",
    }


def test_it_connects_to_the_feed_socket_of_this_site(page, site):
    assert page.evaluate("window.sockets[0].url") == site.replace("http", "ws") + "/ws/feed/"


def test_a_live_item_goes_on_top_as_text(page):
    evil = '<img src=x onerror="alert(1)">'
    deliver(page, item(2, {"text": evil, "href": ""}, {"text": " joined the team "}))
    first = page.locator("[data-feed-list] > li").first
    assert first.get_attribute("id") == "feed-item-2"
    assert first.locator("p").text_content() == f"{evil} joined the team "
    assert page.locator("[data-feed-list] img").count() == 0
    assert page.evaluate("window.alerted") is False
    assert page.locator("[data-feed-status]").text_content().startswith("New: <img")
    assert first.locator("time").get_attribute("datetime") == "2026-01-02T03:04:05+00:00"


def test_only_links_to_this_sites_paths_are_made(page):
    deliver(
        page,
        item(
            3,
            {"text": "Ada", "href": "/u/ada/"},
            {"text": " x ", "href": "javascript:alert(1)"},
            {"text": "y", "href": "//evil.example/"},
        ),
    )
    links = page.locator("#feed-item-3 a")
    assert links.count() == 1
    assert links.first.get_attribute("href") == "/u/ada/"


def test_an_item_already_shown_is_not_added_twice(page):
    deliver(page, item(1, {"text": "again"}))
    deliver(page, item(4, {"text": "new"}))
    deliver(page, item(4, {"text": "new"}))
    assert page.locator("[data-feed-list] > li").count() == 2


def test_the_empty_note_goes_when_an_item_comes(browser, site):
    page = browser.new_page()
    page.add_init_script(FAKE_SOCKET)
    page.route(
        f"{site}/feed.html",
        lambda route: route.fulfill(
            content_type="text/html",
            body=PAGE.replace('<li id="feed-item-1" data-item-id="1"><p>old</p></li>', "").replace(
                "data-feed-empty hidden", "data-feed-empty"
            ),
        ),
    )
    page.goto(f"{site}/feed.html")
    page.wait_for_function("window.sockets.length === 1")
    deliver(page, item(5, {"text": "first"}))
    assert page.locator("[data-feed-empty]").is_hidden()
    page.close()


def test_a_signed_out_socket_is_not_reopened_but_a_dropped_one_is(page):
    page.clock.install()
    page.evaluate("window.sockets[0].shut(4001)")
    page.clock.run_for(600_000)
    assert page.evaluate("window.sockets.length") == 1
    page.evaluate("window.sockets[0].shut(1006)")
    page.clock.run_for(10_000)
    assert page.evaluate("window.sockets.length") == 2
