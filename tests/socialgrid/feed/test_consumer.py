"""The live feed socket /ws/feed/ through the real ASGI router: signed-in volunteers receive
the items published for them, and only those."""

from __future__ import annotations

import asyncio
import json

from django.core.cache import cache
from django.db import transaction

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from compute import notify
from compute.models import Membership
from socialgrid.asgi import application
from socialgrid.feed import consumers
from socialgrid.feed.models import Verb
from socialgrid.feed.publishing import publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

PATH = "/ws/feed/"


async def open_feed(cookie: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    ws = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await ws.connect()
    assert connected
    return ws


async def receive(ws: WebsocketCommunicator, wait: float = 5) -> dict:
    return json.loads(await ws.receive_from(timeout=wait))


async def closed_with(ws: WebsocketCommunicator, wait: float = 5) -> int:
    output = await ws.receive_output(wait)
    while output["type"] != "websocket.close":
        output = await ws.receive_output(wait)
    return output.get("code")


@database_sync_to_async
def publish_committed(actor, verb: str, **kwargs):
    # Live items leave after commit: publish inside a transaction as the other apps do.
    with transaction.atomic():
        return publish(actor, verb, **kwargs)


@pytest.fixture
def people(user_factory):
    return {name: user_factory(name) for name in ("ada", "bob", "eve")}


async def test_my_open_feed_receives_my_new_item(people, session_cookie):
    ada = people["ada"]
    ws = await open_feed(await sync_to_async(session_cookie)(ada))
    item = await publish_committed(ada, Verb.JOINED_TEAM, team_name="Gridlock", team_slug="g")
    message = await receive(ws)
    assert message["type"] == "item"
    assert message["item"]["id"] == item.id
    assert message["item"]["text"] == "ada joined the team Gridlock"
    assert message["item"]["parts"][-1] == {"text": "Gridlock", "href": "/teams/g/"}
    await ws.disconnect()


async def test_a_friends_item_arrives_and_a_strangers_does_not(people, session_cookie, befriend):
    ada, bob, eve = people["ada"], people["bob"], people["eve"]
    befriend(ada, bob)
    ws = await open_feed(await sync_to_async(session_cookie)(ada))
    await publish_committed(eve, Verb.JOINED_TEAM, team_name="Eve's")
    item = await publish_committed(bob, Verb.JOINED_TEAM, team_name="Bob's")
    message = await receive(ws)
    assert message["item"]["id"] == item.id  # Eve's, published first, never came
    assert await ws.receive_nothing(0.2)
    await ws.disconnect()


async def test_a_friends_item_about_a_private_project_does_not_arrive(
    people, session_cookie, befriend, project_factory
):
    ada, bob = people["ada"], people["bob"]
    befriend(ada, bob)
    hidden = await sync_to_async(project_factory)(is_public=False)
    ws = await open_feed(await sync_to_async(session_cookie)(ada))
    await publish_committed(bob, Verb.JOINED_PROJECT, project=hidden)
    assert await ws.receive_nothing(0.5)
    await ws.disconnect()


async def test_a_banned_friends_item_does_not_arrive(people, session_cookie, befriend, ban):
    ada, bob = people["ada"], people["bob"]
    befriend(ada, bob)
    await sync_to_async(ban)(bob)
    ws = await open_feed(await sync_to_async(session_cookie)(ada))
    await publish_committed(bob, Verb.JOINED_TEAM, team_name="Bob's")
    assert await ws.receive_nothing(0.5)
    await ws.disconnect()


async def test_nothing_is_sent_for_a_rolled_back_item(people, session_cookie):
    ada = people["ada"]
    ws = await open_feed(await sync_to_async(session_cookie)(ada))

    @database_sync_to_async
    def publish_then_roll_back() -> None:
        with transaction.atomic():
            publish(ada, Verb.JOINED_TEAM, team_name="Never")
            transaction.set_rollback(True)

    await publish_then_roll_back()
    assert await ws.receive_nothing(0.5)
    await ws.disconnect()


async def test_joining_a_project_reaches_friends_open_feeds(
    people, session_cookie, befriend, project_factory
):
    ada, bob = people["ada"], people["bob"]
    befriend(ada, bob)
    project = await sync_to_async(project_factory)(name="Mandelbrot@Home")
    ws = await open_feed(await sync_to_async(session_cookie)(ada))
    await database_sync_to_async(Membership.objects.create)(user=bob, project=project)
    message = await receive(ws)
    assert message["item"]["text"] == "bob joined Mandelbrot@Home"
    await ws.disconnect()


async def test_an_anonymous_visitor_is_closed_with_4001(db):
    ws = await open_feed()
    assert await closed_with(ws) == consumers.UNAUTHENTICATED
    await ws.disconnect()


async def test_events_for_other_pages_of_the_user_are_ignored(people, session_cookie):
    ada = people["ada"]
    ws = await open_feed(await sync_to_async(session_cookie)(ada))
    await get_channel_layer().group_send(notify.user_group(ada.pk), {"type": "other.page"})
    item = await publish_committed(ada, Verb.JOINED_TEAM, team_name="Still here")
    assert (await receive(ws))["item"]["id"] == item.id
    await ws.disconnect()


async def test_what_the_page_sends_is_ignored(people, session_cookie):
    ws = await open_feed(await sync_to_async(session_cookie)(people["ada"]))
    await ws.send_to(text_data=json.dumps({"type": "join", "group": "user_999"}))
    assert await ws.receive_nothing(0.2)
    await ws.disconnect()


async def test_reconnecting_in_a_loop_is_refused(people, session_cookie, monkeypatch):
    monkeypatch.setattr(consumers, "CONNECTS_PER_MINUTE", 2)
    await sync_to_async(cache.clear)()
    cookie = await sync_to_async(session_cookie)(people["eve"])
    sockets = [await open_feed(cookie) for _ in range(3)]
    assert await sockets[0].receive_nothing(0.1)
    assert await closed_with(sockets[2]) == consumers.TOO_MANY_CONNECTIONS
    await asyncio.gather(*(ws.disconnect() for ws in sockets))
