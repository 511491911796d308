"""The volunteer socket's part of the dispatch path: a result carrying a request, live
events from the hub, and volunteers who leave while their answer is on its way."""

from __future__ import annotations

import asyncio
import itertools
import logging

from django.test import Client as HttpClient

import pytest
from asgiref.sync import sync_to_async

from compute import notify, submission
from compute.credit import Grant
from compute.dispatch import live, writer
from compute.models import Host
from tests.compute.protocol_client import Client

REPLICAS = itertools.count(1)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.no_error_logs,
]


@pytest.fixture
def project(project_factory):
    # A quorum of two: one volunteer's results are never validated, so no credit event
    # comes between a message and its answer.
    project = project_factory(slug="squares", min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(8)], name="b")
    return project


def result(task, request=None, output=None):
    message = {
        "type": "result",
        "replica": task["replica"],
        "lease": task["lease"],
        "output": output if output is not None else {"y": task["input"]["x"] ** 2},
        "cpu_time": 1,
    }
    if request is not None:
        message["request"] = request
    return message


async def volunteer(project) -> Client:
    client = Client()
    await client.hello(project=project.slug)
    return client


async def test_a_result_carrying_a_request_is_acked_with_new_tasks(project):
    client = await volunteer(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]

    ack = await client.ask(result(task, request=2))

    assert ack["type"] == "ack"
    assert ack["of"] == "result"
    assert ack["replica"] == task["replica"]
    assert len(ack["tasks"]) == 2
    assert ack["retry_after"] is None
    assert task["replica"] not in {t["replica"] for t in ack["tasks"]}
    await client.close()


async def test_a_plain_result_is_acked_without_tasks(project):
    client = await volunteer(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    ack = await client.ask(result(task))
    assert ack["type"] == "ack"
    assert "tasks" not in ack
    assert "retry_after" not in ack
    await client.close()


async def test_a_refused_result_still_gets_its_request_answered(project):
    client = await volunteer(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    await client.ask(result(task))

    refused = await client.ask(result(task, request=1))
    assign = await client.receive()

    assert refused["type"] == "error"
    assert refused["code"] == "not_in_progress"
    assert assign["type"] == "assign"
    assert len(assign["tasks"]) == 1
    await client.close()


async def test_with_no_work_left_the_ack_says_when_to_ask_again(project_factory, settings):
    def two_work_units():
        project = project_factory(slug="pair", min_quorum=2, target_nresults=2)
        submission.create_batch(project, project.apps.get(), [{"x": 1}, {"x": 2}], name="b")
        return project

    client = await volunteer(await sync_to_async(two_work_units)())
    first, _second = (await client.ask({"type": "request", "n": 4}))["tasks"]

    # One replica per host of each work unit: nothing more for this host.
    ack = await client.ask(result(first, request=4))

    assert ack["tasks"] == []
    assert ack["retry_after"] == settings.PROTOCOL["RETRY_AFTER_SECONDS"]
    await client.close()


async def test_live_events_reach_the_sockets_of_their_host_and_user(project):
    client = await volunteer(project)
    host_id = next(iter(live.hub().joined.values()))[0]

    await sync_to_async(notify.credit_granted)([grant(host_id, None, 2.5)])
    credit = await client.receive()

    assert credit == {"type": "credit", "amount": 2.5, "host_total": 2.5, "user_total": None}
    await client.close()


def grant(host_id: int, user_id: int | None, amount: float) -> Grant:
    return Grant(next(REPLICAS), 1, 1, host_id, user_id, amount, None)


async def test_a_volunteers_credit_reaches_every_socket_of_theirs(project, user_factory):
    """Two browsers of one volunteer: both show the volunteer's new total (the figure the
    profile and the leaderboard show); only the one that earned it adds to its host's."""
    user = await sync_to_async(user_factory)()
    cookie = await sync_to_async(session_cookie)(user)
    first, second = Client(cookie=cookie), Client(cookie=cookie)
    welcome = await first.hello(project=project.slug)
    await second.hello(project=project.slug)
    assert welcome["credit"] == {"host_total": 0.0, "user_total": 0.0}
    earner = await sync_to_async(Host.objects.get)(uuid=welcome["host"])

    await sync_to_async(notify.credit_granted)([grant(earner.id, user.id, 2.5)])

    assert await first.receive() == {
        "type": "credit",
        "amount": 2.5,
        "host_total": 2.5,
        "user_total": 2.5,
    }
    assert await second.receive() == {
        "type": "credit",
        "amount": 0.0,
        "host_total": 0.0,
        "user_total": 2.5,
    }
    await first.close()
    await second.close()


def session_cookie(user) -> str:
    http = HttpClient()
    http.force_login(user)
    return f"sessionid={http.cookies['sessionid'].value}"


async def test_a_volunteer_leaving_mid_flush_is_not_a_server_error(project, caplog):
    client = await volunteer(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    caplog.set_level(logging.DEBUG)
    # The result goes in and the socket closes before its answer can be sent.
    await client.send(result(task, request=1))
    await client.close()
    await asyncio.sleep(0.5)

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The result was stored all the same: the volunteer's work is not lost.
    from compute.models import Replica

    outcome = await sync_to_async(lambda: Replica.objects.get(id=task["replica"]).outcome)()
    assert outcome == "success"


@pytest.mark.error_logs_expected
async def test_a_fault_of_the_server_is_answered_and_the_socket_kept(project, monkeypatch, caplog):
    client = await volunteer(project)

    def broken(self, op):
        raise RuntimeError("a bug")

    monkeypatch.setattr(writer.Writer, "submit", broken)
    answer = await client.ask({"type": "request", "n": 1})
    assert answer["type"] == "error"
    assert answer["code"] == "server_error"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "failed to handle a Request message"
    ]
    monkeypatch.undo()
    assert (await client.ask({"type": "request", "n": 1}))["type"] == "assign"
    await client.close()
