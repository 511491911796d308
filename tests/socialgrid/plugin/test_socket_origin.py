"""The plugin's sockets are opened by the page inside the frame, so their Origin is this
site's own and the consumers' AllowedHostsOriginValidator lets them in; the embedding site's
origin would be refused."""

from __future__ import annotations

import json
from urllib.parse import urljoin, urlsplit

from django.test import Client as HttpClient

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from compute import submission
from socialgrid.asgi import application
from tests.socialgrid.plugin.markup import parse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

EMBEDDING_SITE = "https://blog.example.org"
CAPS = {"cores": 2, "platform": "test-x86_64", "wasm": True, "benchmark_fpops": 2e9}


@pytest.fixture
def project(project_factory):
    project = project_factory(slug="squares")
    submission.create_batch(project, project.apps.get(), [{"x": 1}], name="b")
    return project


def plugin_page_sockets() -> tuple[str, str, str]:
    """The frame's origin and the two socket paths of its page, as the browser sees them."""
    frame_url = "http://testserver/embed/squares/"
    page = parse(HttpClient().get(frame_url).content)
    worker = page.one("section", data_volunteer=None)["data-ws-url"]
    live = page.one("section", data_live_stats=None)["data-socket-path"]
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(frame_url))
    # Relative paths: the scripts resolve them against the frame's own location.
    for path in (worker, live):
        assert urlsplit(path).netloc == ""
        assert urlsplit(urljoin(frame_url, path)).netloc == "testserver"
    return origin, worker, live


async def connect(path: str, origin: str) -> tuple[WebsocketCommunicator, bool]:
    ws = WebsocketCommunicator(application, path, headers=[(b"origin", origin.encode())])
    connected, _ = await ws.connect()
    return ws, connected


async def test_the_plugin_pages_worker_socket_has_the_sites_origin(project):
    origin, worker, _ = await sync_to_async(plugin_page_sockets)()
    assert origin == "http://testserver"
    ws, connected = await connect(worker, origin)
    assert connected
    hello = {"type": "hello", "v": 1, "project": "squares", "capabilities": CAPS}
    await ws.send_to(text_data=json.dumps(hello))
    welcome = json.loads(await ws.receive_from(timeout=3))
    assert welcome["type"] == "welcome"
    assert welcome["user"] is None  # an anonymous host, as in a frame on another site
    assert welcome["host_token"]
    await ws.disconnect()


async def test_the_plugin_pages_live_socket_has_the_sites_origin(project):
    origin, _, live = await sync_to_async(plugin_page_sockets)()
    ws, connected = await connect(live, origin)
    assert connected
    assert json.loads(await ws.receive_from(timeout=3))["type"] == "stats"
    await ws.disconnect()


@pytest.mark.parametrize("path", ["/ws/worker/", "/ws/projects/squares/"])
async def test_a_socket_from_the_embedding_site_itself_is_refused(project, path):
    ws, connected = await connect(path, EMBEDDING_SITE)
    assert not connected
    await ws.disconnect()
