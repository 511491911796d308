"""The volunteer panel (static/socialgrid/volunteer.js) in Chromium, against a scripted server.

The page is the template's markup contract on a static server; Playwright plays the server
end of /ws/worker/ and hands out real mandelbrot tiles, so the whole browser side runs: the
binding, the client, the pool, the runner and the kernel.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from compute.credit_display import format_credit
from compute.examples import EXAMPLES, mandelbrot

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HOST = "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f"
LEASE = "0123456789abcdef0123456789abcdef"

PAGE = """<!doctype html>
<title>volunteer</title>
<section data-volunteer data-ws-url="/ws/worker/" data-project="{project}"
         data-signed-in="false" data-host-token-url="/ignored/"
         data-offers-url="/with-work.json">
  <button data-action="start">Start</button>
  <button data-action="pause">Pause</button>
  <button data-action="resume">Resume</button>
  <button data-action="finish">Finish current work, then stop</button>
  <input type="range" data-setting="cores" min="1" max="8" value="4">
  <output data-show="cores">4</output>
  <input type="range" data-setting="cpu" min="10" max="100" step="10" value="100">
  <output data-show="cpu">100</output>
  <input type="checkbox" data-setting="pause-hidden">
  <p data-show="status" aria-live="polite">Idle</p>
  <span data-show="done">0</span> <span data-show="credit">0</span>
  <ul data-tasks></ul>
  <div data-offers hidden></div>
</section>
<script type="module" src="/static/socialgrid/volunteer.js"></script>
"""

# Small tiles of the demo image: quick, and with a reference answer each.
TILES = [{**mandelbrot.demo_inputs()[0], "w": 40, "h": 30, "x": 40 * i} for i in range(6)]
# Whole demo tiles: a few seconds each at a 10% CPU share, long enough to catch running.
SLOW_TILES = mandelbrot.demo_inputs()[:6]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("volunteer")
    (root / "static").symlink_to(ROOT / "static")
    (root / "index.html").write_text(PAGE.format(project="mandelbrot"))
    # The projects with work a dry project offers, and the page of one of them.
    (root / "abc.html").write_text(PAGE.format(project="abc"))
    offers = [{"slug": "abc", "name": "ABC <b>triples</b>", "url": "/abc.html"}]
    (root / "with-work.json").write_text(json.dumps({"projects": offers}))
    (root / "kernels").mkdir()
    example = EXAMPLES["mandelbrot"]
    (root / "kernels" / "mandelbrot.js").write_bytes(example.kernel_source().encode())
    (root / "kernels" / "mandelbrot.wasm").write_bytes(example.wasm_bytes())
    handler = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
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


def task(replica: int, tile: dict[str, Any]) -> dict[str, Any]:
    example = EXAMPLES["mandelbrot"]
    return {
        "replica": replica,
        "workunit": replica,
        "name": f"tile {replica}",
        "project": "mandelbrot",
        "app": {
            "name": "mandelbrot",
            "version": 1,
            "kernel_url": "/kernels/mandelbrot.js",
            "kernel_sha256": hashlib.sha256(example.kernel_source().encode()).hexdigest(),
            "wasm_url": "/kernels/mandelbrot.wasm",
            "wasm_sha256": hashlib.sha256(example.wasm_bytes()).hexdigest(),
        },
        "input": tile,
        "lease": LEASE,
        "deadline": "2030-01-01T00:00:00Z",
    }


class Server:
    """The server end of /ws/worker/: hands out TILES, acknowledges results, grants credit.

    As the real server does, a result carrying `request` gets its tasks in the ack, or, when
    the result is refused (its replica is in `refuse`), in an assign after the error.
    `delivered` says which answer brought each replica."""

    def __init__(self, tiles: list[dict[str, Any]]) -> None:
        self.tiles = tiles
        self.received: list[dict[str, Any]] = []
        self.unassigned = list(range(1, len(tiles) + 1))
        self.sockets: list[Any] = []
        self.refuse: set[int] = set()
        self.delivered: dict[int, str] = {}
        self.unanswered: list[dict[str, Any]] = []  # requests held back while `silent`
        self.silent = False

    def lease(self, n: int, answer: str) -> dict[str, Any]:
        replicas, self.unassigned = self.unassigned[:n], self.unassigned[n:]
        self.delivered.update(dict.fromkeys(replicas, answer))
        return {
            "tasks": [task(r, self.tiles[r - 1]) for r in replicas],
            "retry_after": None if replicas else 60,
        }

    def attach(self, ws: Any) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda text: self.answer(ws, json.loads(text)))

    def answer(self, ws: Any, message: dict[str, Any]) -> None:
        self.received.append(message)
        kind = message["type"]
        if kind == "hello":
            welcome = {
                "type": "welcome",
                "v": 1,
                "host": HOST,
                "host_token": "token",
                "user": None,
                "limits": {
                    "max_message_bytes": 1052672,
                    "messages_per_second": 20,
                    "max_in_flight": 4,
                    "heartbeat_seconds": 30,
                },
                "resume": [],
                "credit": {"host_total": 1.5, "user_total": None},
            }
            ws.send(json.dumps(welcome))
        elif kind == "request" and self.silent:
            self.unanswered.append(message)
        elif kind == "request":
            ws.send(json.dumps({"type": "assign", **self.lease(message["n"], "assign")}))
        elif kind == "result" and message["replica"] in self.refuse:
            refusal = {
                "type": "error",
                "code": "lease_expired",
                "message": "result refused: lease expired",
                "replica": message["replica"],
            }
            ws.send(json.dumps(refusal))
            if "request" in message:
                answer = f"assign after refusing {message['replica']}"
                ws.send(json.dumps({"type": "assign", **self.lease(message["request"], answer)}))
        elif kind in ("result", "error"):
            ack = {"type": "ack", "of": kind, "replica": message["replica"], "deadline": None}
            if "request" in message:
                ack.update(self.lease(message["request"], f"ack of {message['replica']}"))
            ws.send(json.dumps(ack))
            if kind == "result":
                ws.send(
                    json.dumps(
                        {
                            "type": "credit",
                            "amount": 0.25,
                            "host_total": 1.5 + 0.25 * len(self.results()),
                            "user_total": None,
                        }
                    )
                )

    def results(self) -> list[dict[str, Any]]:
        return [m for m in self.received if m["type"] == "result"]


@pytest.fixture
def page(request, browser, site):
    context = browser.new_context()
    page = context.new_page()
    server = Server(getattr(request, "param", TILES))
    page.route_web_socket("**/ws/worker/", server.attach)
    page.goto(f"{site}/index.html")
    page.wait_for_function("document.querySelector('[data-volunteer]').dataset.state === 'idle'")
    yield page, server
    context.close()


def shown(page, name: str) -> str:
    return page.text_content(f'[data-show="{name}"]')


def buttons(page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("[data-action]")].map(
             (b) => [b.dataset.action, b.hidden ? "hidden" : b.disabled ? "off" : "on"]))"""
    )


def wait_state(page, state: str) -> None:
    page.wait_for_function(
        f"document.querySelector('[data-volunteer]').dataset.state === '{state}'", timeout=30_000
    )


def test_the_settings_start_from_the_machine_and_are_remembered(page):
    page, _ = page
    cores = page.evaluate("navigator.hardwareConcurrency")
    slider = page.locator('[data-setting="cores"]')
    assert slider.get_attribute("max") == str(cores)
    assert slider.input_value() == str(max(1, cores // 2))
    assert shown(page, "cores") == str(max(1, cores // 2))
    page.fill('[data-setting="cpu"]', "40")
    assert shown(page, "cpu") == "40"
    page.check('[data-setting="pause-hidden"]')
    page.reload()
    assert page.locator('[data-setting="cpu"]').input_value() == "40"
    assert page.locator('[data-setting="pause-hidden"]').is_checked()
    assert buttons(page) == {
        "start": "on",
        "pause": "hidden",
        "resume": "hidden",
        "finish": "hidden",
    }


def test_start_computes_the_tiles_and_shows_the_figures(page):
    page, server = page
    page.click("[data-action=start]")
    wait_state(page, "running")
    cores = page.locator('[data-setting="cores"]').input_value()
    computing = f"Computing on {cores} core{'' if cores == '1' else 's'}"
    # Once a task has started: before that the line says it waits for the server.
    page.wait_for_function(
        f"() => document.querySelector('[data-show=status]').textContent === '{computing}'"
    )
    assert buttons(page) == {"start": "hidden", "pause": "on", "resume": "hidden", "finish": "on"}
    page.wait_for_function(
        f"document.querySelector('[data-show=done]').textContent === '{len(TILES)}'", timeout=60_000
    )
    by_replica = {m["replica"]: m["output"] for m in server.results()}
    assert by_replica == {i + 1: mandelbrot.run(tile) for i, tile in enumerate(TILES)}
    assert shown(page, "credit") == format_credit(1.5 + 0.25 * len(TILES))
    hello = server.received[0]
    assert hello["project"] == "mandelbrot"
    assert hello["capabilities"]["platform"] == "blink-x86_64"
    assert hello["capabilities"]["benchmark_fpops"] > 0
    assert page.evaluate("localStorage.getItem('socialgrid.host')") == HOST
    # A reload keeps what this browser's host has done, before and after Start.
    page.reload()
    assert shown(page, "done") == str(len(TILES))
    page.click("[data-action=start]")
    page.wait_for_function(
        "['running', 'waiting'].includes(document.querySelector('[data-volunteer]').dataset.state)"
    )
    assert shown(page, "done") == str(len(TILES))


@pytest.mark.parametrize("page", [SLOW_TILES], indirect=True, ids=["slow"])
def test_pause_empties_the_task_list_and_finish_stops(page):
    page, server = page
    page.fill('[data-setting="cpu"]', "10")  # slow enough to catch tasks running
    page.click("[data-action=start]")
    page.wait_for_selector("[data-tasks] li[data-replica] progress")
    page.click("[data-action=pause]")
    wait_state(page, "paused")
    assert shown(page, "status") == "Paused"
    assert page.locator("[data-tasks] li").count() == 0
    assert buttons(page) == {"start": "hidden", "pause": "hidden", "resume": "on", "finish": "on"}

    page.fill('[data-setting="cpu"]', "100")
    page.click("[data-action=resume]")
    wait_state(page, "running")
    page.click("[data-action=finish]")
    # While finishing, Finish is shown but disabled; with fast tasks the page may already have
    # stopped, which hides it. Read both at once so the check does not race the page.
    state, finish = page.evaluate(
        """() => [document.querySelector("[data-volunteer]").dataset.state,
                  document.querySelector("[data-action=finish]").hidden ? "hidden"
                  : document.querySelector("[data-action=finish]").disabled ? "off" : "on"]"""
    )
    assert (state, finish) in {("finishing", "off"), ("stopped", "hidden")}
    wait_state(page, "stopped")
    assert shown(page, "status") == "Stopped"
    requests_before = [m for m in server.received if m["type"] == "request"]
    assert int(shown(page, "done")) == len(server.results()) >= 1
    assert [m for m in server.received if m["type"] == "request"] == requests_before


def test_a_dropped_connection_counts_down_to_the_next_attempt(page):
    page, server = page
    page.click("[data-action=start]")
    wait_state(page, "running")
    server.sockets[0].close(code=1011, reason="restarting")
    wait_state(page, "reconnecting")
    assert shown(page, "status").startswith("Reconnecting")
    wait_state(page, "running")
    assert len(server.sockets) == 2
    assert [m["host"] for m in server.received if m["type"] == "hello"] == [None, HOST]


def test_results_ask_for_more_work_and_their_acks_bring_it(page):
    page, server = page
    # One core: two tasks held, so the first result leaves one and asks for one more.
    page.fill('[data-setting="cores"]', "1")
    page.click("[data-action=start]")
    page.wait_for_function(
        f"document.querySelector('[data-show=done]').textContent === '{len(TILES)}'", timeout=60_000
    )
    requests = [m for m in server.received if m["type"] == "request"]
    assert requests[0] == {"type": "request", "n": 2}
    first = server.results()[0]
    assert (first["replica"], first.get("request")) == (1, 1)
    assert (server.delivered[1], server.delivered[2], server.delivered[3]) == (
        "assign",
        "assign",
        "ack of 1",
    )
    # Later results ride too, unless a tile finished before the previous answer came back
    # (a request of its own then follows that answer): either way, every tile is computed.
    by_replica = {m["replica"]: m["output"] for m in server.results()}
    assert by_replica == {i + 1: mandelbrot.run(tile) for i, tile in enumerate(TILES)}


def test_a_refused_result_still_brings_the_work_it_asked_for(page):
    page, server = page
    server.refuse = {1}
    page.fill('[data-setting="cores"]', "1")
    page.click("[data-action=start]")
    page.wait_for_function(
        f"document.querySelector('[data-show=done]').textContent === '{len(TILES) - 1}'",
        timeout=60_000,
    )
    first = server.results()[0]
    assert (first["replica"], first.get("request")) == (1, 1)
    assert server.delivered[3] == "assign after refusing 1"
    assert sorted(m["replica"] for m in server.results()) == list(range(1, len(TILES) + 1))


@pytest.mark.parametrize("page", [TILES[:1]], indirect=True, ids=["one-tile"])
def test_a_project_out_of_work_says_so_and_offers_one_with_work(page):
    """Never "computing" with nothing to compute: once the only tile is done and the
    server has no more, the panel says there is no work, and one click on an offered
    project opens its page already computing."""
    page, server = page
    page.fill('[data-setting="cores"]', "1")
    page.click("[data-action=start]")
    wait_state(page, "waiting")
    assert shown(page, "status").startswith("No work for this project right now: asking again")
    assert len(server.results()) == 1
    assert page.locator("[data-tasks] li").count() == 0
    offer = page.locator("[data-offers] a")
    offer.wait_for()
    assert page.locator("[data-offers]").is_visible()
    assert offer.text_content() == "Compute for ABC <b>triples</b>"  # text, never markup
    assert buttons(page) == {"start": "hidden", "pause": "on", "resume": "hidden", "finish": "on"}

    offer.click()
    page.wait_for_url("**/abc.html")
    page.wait_for_function(
        "document.querySelector('[data-volunteer]').dataset.state !== 'idle'", timeout=30_000
    )
    hellos = [m for m in server.received if m["type"] == "hello"]
    assert hellos[-1]["project"] == "abc"
    assert page.evaluate("sessionStorage.getItem('socialgrid.startOn')") is None


def test_a_page_opened_directly_never_starts_on_its_own(page, site):
    """Only an offer clicked on this site starts the next page: a link from anywhere else
    opens it idle."""
    page, server = page
    page.goto(f"{site}/abc.html")
    # An offer's start happens as the panel is bound (client.start() changes the state
    # before it awaits anything), so a page that is idle once bound did not start.
    page.wait_for_function("document.querySelector('[data-volunteer]').dataset.state === 'idle'")
    assert server.received == []


def test_running_with_nothing_to_compute_says_it_waits_for_the_server(page):
    """A request the server has not answered yet, no task held: after a moment the line
    says so (not "Computing"), and computing resumes with the answer."""
    page, server = page
    server.silent = True
    page.click("[data-action=start]")
    wait_state(page, "running")
    page.wait_for_function(
        "() => document.querySelector('[data-show=status]').textContent"
        " === 'Waiting for the server to answer…'",
        timeout=30_000,
    )
    assert page.evaluate("'idle' in document.querySelector('[data-volunteer]').dataset")
    assert server.unanswered, "the page asked for work"
    server.silent = False
    answer = server.lease(server.unanswered[0]["n"], "late assign")
    server.sockets[0].send(json.dumps({"type": "assign", **answer}))
    page.wait_for_function(
        "() => document.querySelector('[data-show=status]').textContent.startsWith('Computing')",
        timeout=30_000,
    )
    assert not page.evaluate("'idle' in document.querySelector('[data-volunteer]').dataset")


# Records every moment the status line says "Computing" beside an empty task list.
WATCH_CLAIMS = """() => {
  window.claims = [];
  const root = document.querySelector('[data-volunteer]');
  const status = root.querySelector('[data-show=status]');
  const list = root.querySelector('[data-tasks]');
  new MutationObserver(() => {
    if (status.textContent.startsWith('Computing') && list.children.length === 0) {
      window.claims.push(status.textContent);
    }
  }).observe(root, { subtree: true, childList: true, characterData: true });
}"""


@pytest.mark.parametrize("page", [TILES * 3], indirect=True, ids=["short"])
def test_the_panel_never_says_computing_beside_an_empty_task_list(page):
    """Short tasks, and a last one after which the server has no more: a finished task stays
    listed until the next starts or the line stops saying "Computing"."""
    page, _ = page
    page.evaluate(WATCH_CLAIMS)
    page.click("[data-action=start]")
    page.wait_for_function(
        f"document.querySelector('[data-show=done]').textContent === '{len(TILES) * 3}'",
        timeout=60_000,
    )
    wait_state(page, "waiting")
    assert page.evaluate("window.claims") == []
    assert page.locator("[data-tasks] li").count() == 0


def test_an_empty_task_list_says_what_the_panel_is_doing(browser):
    """The empty list's line (site.css) matches the panel's state: a paused or finishing
    panel is not waiting for work."""
    page = browser.new_page()
    css = (ROOT / "static/socialgrid/site.css").read_text()
    page.set_content(f"<style>{css}</style><section data-volunteer><ul data-tasks></ul></section>")
    said = {}
    states = ("idle", "connecting", "running", "reconnecting", "waiting", "paused", "finishing")
    for state in (*states, "stopped"):
        said[state] = page.evaluate(
            """(state) => {
              document.querySelector("[data-volunteer]").dataset.state = state;
              return getComputedStyle(document.querySelector("ul[data-tasks]"), "::before")
                .content;
            }""",
            state,
        )
    page.close()
    assert said["idle"] == said["stopped"] == '"None yet. Press Start to fetch work."'
    assert (
        said["connecting"]
        == said["running"]
        == said["reconnecting"]
        == '"Waiting for work from the server…"'
    )
    assert said["waiting"] == '"None: this project has no work to hand out right now."'
    assert said["paused"] == '"None while paused. Resume to fetch work."'
    assert said["finishing"] == '"None left: stopping."'
