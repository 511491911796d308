"""A volunteer in Chromium: an anonymous visitor of a project page in its own browser context
(its own localStorage, so its own host).

It keeps every frame of the volunteer protocol socket, and the page records what a person
would see change (task progress, "Tasks done", the panel's state, the picture) with a
MutationObserver installed before the page's own scripts run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, WebSocket
from playwright.async_api import TimeoutError as PlaywrightTimeout

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# The volunteers of the running test, for the failure report (conftest.py).
LIVE_VOLUNTEERS: list[Volunteer] = []

# Installed in every page before its scripts: window.__sg records, per task (replica id),
# the values its progress bar took in order; each "Tasks done" figure shown; the panel's
# data-state changes with their time (Date.now()); and each src the live picture was given.
OBSERVER = """
(() => {
  const seen = { progress: {}, done: [], states: [], pictures: [] };
  window.__sg = seen;
  const record = (replica, value) => {
    const values = (seen.progress[replica] ||= []);
    const number = Number(value);
    if (values[values.length - 1] !== number) values.push(number);
  };
  new MutationObserver((mutations) => {
    const bars = new Map(); // progress element -> {replica, values before each change}
    const barOf = (bar) => {
      const item = bar.closest("li[data-replica]");
      if (!item) return null;
      if (!bars.has(bar)) bars.set(bar, { replica: item.dataset.replica, before: [] });
      return bars.get(bar);
    };
    for (const m of mutations) {
      const t = m.target;
      if (m.type === "childList" && t.matches && t.matches("[data-show=done]")) {
        const done = Number(t.textContent);
        if (seen.done[seen.done.length - 1] !== done) seen.done.push(done);
      } else if (m.type === "childList") {
        for (const node of m.addedNodes) {
          if (node.nodeType !== 1 || !node.matches("li[data-replica]")) continue;
          for (const bar of node.querySelectorAll("progress")) barOf(bar);
        }
      } else if (m.attributeName === "value" && t.tagName === "PROGRESS") {
        const entry = barOf(t);
        if (entry) entry.before.push(m.oldValue);
      } else if (m.attributeName === "data-state" && t.matches("[data-volunteer]")) {
        seen.states.push([t.dataset.state, Date.now()]);
      } else if (m.attributeName === "src" && t.matches("img[data-live-image]")) {
        seen.pictures.push([t.getAttribute("src"), Date.now()]);
      }
    }
    // In order: the value before each change, then the value now.
    for (const [bar, { replica, before }] of bars) {
      for (const value of before) record(replica, value ?? 0);
      record(replica, bar.getAttribute("value") ?? bar.value);
    }
  }).observe(document, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeOldValue: true,
    attributeFilter: ["value", "data-state", "src"],
  });
})();
"""

PANEL = """() => {
  const root = document.querySelector("[data-volunteer]");
  const text = (name) => root.querySelector(`[data-show="${name}"]`).textContent;
  const buttons = {};
  for (const b of root.querySelectorAll("[data-action]")) {
    buttons[b.dataset.action] = b.hidden ? "hidden" : b.disabled ? "off" : "on";
  }
  return {
    state: root.dataset.state, status: text("status"), done: text("done"),
    credit: text("credit"), tasks: [...root.querySelectorAll("[data-tasks] li")].map(
      (li) => [li.dataset.replica, li.querySelector("progress")?.value]),
    buttons,
  };
}"""


@dataclass
class Socket:
    """One /ws/worker/ connection of a page: the JSON messages each way, in order."""

    url: str
    opened_at: float
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    def acked(self, of: str = "result") -> list[int]:
        return [m["replica"] for m in self.of_type("ack") if m.get("of") == of]


def _json(payload: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except ValueError:
        return {"type": "(not json)", "payload": repr(payload)[:200]}
    return message if isinstance(message, dict) else {"type": "(not an object)"}


class Volunteer:
    """An anonymous volunteer: its own browser context on a project page."""

    def __init__(self, name: str, context: BrowserContext, page: Page) -> None:
        self.name = name
        self.context = context
        self.page = page
        self.sockets: list[Socket] = []
        self.console: list[str] = []

    @classmethod
    async def open(cls, browser: Browser, url: str, name: str, **options: Any) -> Volunteer:
        """Open ``url`` in a new context (``options``: Playwright's new_context options)."""
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = await browser.new_context(**options)
        await context.add_init_script(script=OBSERVER)
        page = await context.new_page()
        volunteer = cls(name, context, page)
        LIVE_VOLUNTEERS.append(volunteer)
        page.on("websocket", volunteer._watch)
        page.on("console", lambda m: volunteer.console.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: volunteer.console.append(f"page error: {e}"))
        await page.goto(url)
        await volunteer.wait_for("root.dataset.state === 'idle'", "the panel to bind (idle)")
        return volunteer

    def _watch(self, ws: WebSocket) -> None:
        if "/ws/worker/" not in ws.url:
            return
        record = Socket(ws.url, time.time())
        self.sockets.append(record)
        ws.on("framereceived", lambda payload: record.received.append(_json(payload)))
        ws.on("framesent", lambda payload: record.sent.append(_json(payload)))
        ws.on("close", lambda _: record.closed.set())

    async def close(self) -> None:
        await self.context.close()
        if self in LIVE_VOLUNTEERS:
            LIVE_VOLUNTEERS.remove(self)

    # --- the panel --------------------------------------------------------------------------

    async def press(self, action: str) -> None:
        await self.page.click(f"[data-volunteer] [data-action={action}]")

    async def set_cpu(self, percent: int) -> None:
        await self.page.fill('[data-volunteer] [data-setting="cpu"]', str(percent))

    async def panel(self) -> dict[str, Any]:
        return await self.page.evaluate(PANEL)

    async def seen(self) -> dict[str, Any]:
        """What the observer recorded (see OBSERVER)."""
        return await self.page.evaluate("window.__sg")

    async def wait_for(self, condition: str, what: str, within: float = 60) -> None:
        """Wait until a JavaScript expression over ``root`` (the panel) is true."""
        script = f"""() => {{
          const root = document.querySelector("[data-volunteer]");
          return Boolean(root && ({condition}));
        }}"""
        try:
            await self.page.wait_for_function(script, timeout=within * 1000, polling=100)
        except PlaywrightTimeout:
            panel = await self.panel()
            raise AssertionError(
                f"{self.name}: timed out after {within:.0f} s waiting for {what}; "
                f"the panel: {panel}"
            ) from None

    async def wait_state(self, state: str, within: float = 60) -> None:
        await self.wait_for(f"root.dataset.state === {state!r}", f"data-state={state}", within)

    # --- the protocol -----------------------------------------------------------------------

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [m for s in self.sockets for m in s.of_type(kind)]

    def host(self) -> str:
        welcomes = self.received("welcome")
        assert welcomes, f"{self.name} was never welcomed"
        return welcomes[-1]["host"]

    def held(self) -> set[int]:
        """Replicas leased to this volunteer (assigned, resumed, or in the ack of a result
        that asked for more) and not yet answered (acknowledged, cancelled or refused), from
        the frames of all its sockets."""
        held: set[int] = set()
        for s in self.sockets:
            for m in s.received:
                kind = m.get("type")
                if kind == "welcome":
                    held = {task["replica"] for task in m.get("resume", [])}
                elif kind == "assign":
                    held |= {task["replica"] for task in m.get("tasks", [])}
                elif kind == "ack" and m.get("of") in ("result", "error"):
                    held.discard(m["replica"])
                    held |= {task["replica"] for task in m.get("tasks", [])}
                elif kind == "cancel":
                    held -= set(m.get("replicas", []))
                elif kind == "error" and m.get("replica") is not None:
                    held.discard(m["replica"])
        return held

    def report(self) -> str:
        lines = [f"--- volunteer {self.name}: {len(self.sockets)} socket(s) ---"]
        for i, s in enumerate(self.sockets, 1):
            kinds: dict[str, int] = {}
            for m in s.received:
                kinds[m.get("type", "?")] = kinds.get(m.get("type", "?"), 0) + 1
            lines.append(f"socket {i}: received {kinds}; sent {len(s.sent)} messages")
            lines += [f"  <- {json.dumps(m)[:300]}" for m in s.received[-15:]]
        lines += self.console[-40:]
        return "\n".join(lines)
