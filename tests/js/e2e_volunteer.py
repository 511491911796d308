"""Drive the volunteer panel of a running platform in headless Chromium and say what happens.

Not a pytest test (it needs a server): start one on a scratch database first, e.g.

    export SOCIALGRID_VAR_DIR=$(mktemp -d)
    .venv/bin/python manage.py migrate && .venv/bin/python manage.py seed_demo
    .venv/bin/python manage.py runplatform --port 8765 &
    .venv/bin/python tests/js/e2e_volunteer.py http://127.0.0.1:8765 mandelbrot

It presses Start, waits for results to be acknowledged, pauses, resumes, reloads the page
(leases and unacknowledged results must carry over), then finishes and stops.
"""

from __future__ import annotations

import json
import os
import sys
import time

from playwright.sync_api import Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def panel(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => {
          const root = document.querySelector("[data-volunteer]");
          const text = (name) => root.querySelector(`[data-show="${name}"]`).textContent;
          const buttons = {};
          for (const b of root.querySelectorAll("[data-action]")) {
            buttons[b.dataset.action] = b.hidden ? "hidden" : b.disabled ? "off" : "on";
          }
          return {
            state: root.dataset.state, status: text("status"), done: text("done"),
            credit: text("credit"), tasks: root.querySelectorAll("[data-tasks] li").length,
            buttons,
          };
        }"""
    )


def wait_for(page: Page, condition: str, timeout: float = 60) -> None:
    page.wait_for_function(condition, timeout=timeout * 1000)


def main(base: str, project: str) -> int:
    frames: list[tuple[str, str]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.on("console", lambda m: say(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: say(f"PAGE ERROR: {e}"))

        def watch(ws) -> None:
            ws.on("framesent", lambda f: frames.append(("sent", f if isinstance(f, str) else "")))
            ws.on(
                "framereceived", lambda f: frames.append(("got", f if isinstance(f, str) else ""))
            )

        page.on("websocket", watch)
        page.goto(f"{base}/projects/{project}/")
        say(f"loaded: {panel(page)}")

        page.click("[data-action=start]")
        wait_for(page, "document.querySelector('[data-volunteer]').dataset.state === 'running'")
        say(f"running: {panel(page)}")
        wait_for(page, "Number(document.querySelector('[data-show=done]').textContent) >= 3", 120)
        say(f"three acknowledged: {panel(page)}")

        page.click("[data-action=pause]")
        say(f"paused: {panel(page)}")
        time.sleep(1)
        page.click("[data-action=resume]")
        wait_for(page, "document.querySelectorAll('[data-tasks] li').length > 0", 30)
        say(f"resumed: {panel(page)}")

        stored = page.evaluate("() => localStorage.getItem('socialgrid.host')")
        page.reload()
        say(f"reloaded (host {stored}): {panel(page)}")
        page.click("[data-action=start]")
        wait_for(page, "document.querySelector('[data-volunteer]').dataset.state === 'running'")
        same = page.evaluate("() => localStorage.getItem('socialgrid.host')") == stored
        say(f"running again, same host: {same}: {panel(page)}")
        wait_for(page, "Number(document.querySelector('[data-show=done]').textContent) >= 2", 120)

        page.click("[data-action=finish]")
        say(f"finishing: {panel(page)}")
        wait_for(
            page, "document.querySelector('[data-volunteer]').dataset.state === 'stopped'", 120
        )
        say(f"stopped: {panel(page)}")
        left = page.evaluate("() => localStorage.getItem('socialgrid.results')")
        say(f"left in storage: {left}")
        browser.close()

    kinds: dict[str, int] = {}
    for direction, text in frames:
        try:
            kind = f"{direction} {json.loads(text).get('type')}"
        except ValueError:
            kind = f"{direction} ?"
        kinds[kind] = kinds.get(kind, 0) + 1
    say(f"frames: {json.dumps(kinds, sort_keys=True)}")
    errors = [text for direction, text in frames if direction == "got" and '"error"' in text]
    for text in errors[:10]:
        say(f"server error: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000",
            sys.argv[2] if len(sys.argv) > 2 else "mandelbrot",
        )
    )
