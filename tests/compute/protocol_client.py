"""A protocol test client: WebsocketCommunicator through the real ASGI router, checking every
server message against docs/protocol.schema.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from channels.testing import WebsocketCommunicator

from socialgrid.asgi import application

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol.schema.json"


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def check_server_message(message: dict[str, Any]) -> None:
    full = schema()
    kind = message.get("type")
    assert kind in full["server"], f"undocumented server message {kind!r}"
    sub = {"$defs": full["$defs"], **full["server"][kind]}
    jsonschema.validate(message, sub, format_checker=jsonschema.FormatChecker())


def check_client_message(message: dict[str, Any]) -> None:
    full = schema()
    kind = message.get("type")
    assert kind in full["client"], f"undocumented client message {kind!r}"
    sub = {"$defs": full["$defs"], **full["client"][kind]}
    jsonschema.validate(message, sub, format_checker=jsonschema.FormatChecker())


CAPS = {"cores": 2, "platform": "test-x86_64", "wasm": True, "benchmark_fpops": 2e9}


class Client:
    def __init__(self, path: str = "/ws/worker/", cookie: str | None = None) -> None:
        headers = [(b"origin", b"http://testserver")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        self.ws = WebsocketCommunicator(application, path, headers=headers)

    async def connect(self) -> None:
        connected, _ = await self.ws.connect()
        assert connected

    async def send(self, message: dict[str, Any] | str) -> None:
        """Send a message; a dict is checked against the schema on the way, so a test's
        well-formed message is what docs/protocol.schema.json allows. Tests that send a
        malformed message on purpose send it as text (``json.dumps``)."""
        if isinstance(message, dict):
            check_client_message(message)
            message = json.dumps(message)
        await self.ws.send_to(text_data=message)

    async def receive(self, wait: float = 3) -> dict[str, Any]:
        message = json.loads(await self.ws.receive_from(timeout=wait))
        check_server_message(message)
        return message

    async def ask(self, message: dict[str, Any] | str, wait: float = 3) -> dict[str, Any]:
        await self.send(message)
        return await self.receive(wait)

    async def hello(self, **fields: Any) -> dict[str, Any]:
        await self.connect()
        message = {"type": "hello", "v": 1, "capabilities": dict(CAPS), **fields}
        welcome = await self.ask(message)
        assert welcome["type"] == "welcome", welcome
        return welcome

    async def closed_with(self, wait: float = 3) -> int:
        output = await self.ws.receive_output(wait)
        while output["type"] != "websocket.close":
            output = await self.ws.receive_output(wait)
        # The consumer keeps listening on the channel layer until the disconnect arrives;
        # left running, its Redis receive loop outlives the test's event loop.
        await self.ws.disconnect()
        return output.get("code")

    async def close(self) -> None:
        await self.ws.disconnect()
