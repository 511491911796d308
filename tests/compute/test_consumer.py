"""The volunteer protocol end to end through the real ASGI router: every message type and
every error path. Every server message is checked against docs/protocol.schema.json."""

from __future__ import annotations

import json
from datetime import timedelta

from django.test import Client as HttpClient
from django.utils import timezone

import jsonschema
import pytest
from asgiref.sync import sync_to_async

from compute import submission, validation
from compute.hosts import read_host_token
from compute.models import CreditEntry, Host, Membership, Replica, Volunteer
from compute.states import Outcome, ServerState
from tests.compute.protocol_client import Client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.no_error_logs,
]


@pytest.fixture
def project(project_factory):
    project = project_factory(slug="squares", min_quorum=2, target_nresults=2, delay_bound=600)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(6)], name="b")
    return project


@pytest.fixture
def session_cookie(user_factory):
    def make(user=None):
        user = user or user_factory()
        http = HttpClient()
        http.force_login(user)
        return user, f"sessionid={http.cookies['sessionid'].value}"

    return make


async def anonymous(project, **hello):
    client = Client()
    welcome = await client.hello(project=project.slug, **hello)
    return client, welcome


async def test_an_anonymous_visitor_gets_a_host_and_a_signed_token(project):
    client, welcome = await anonymous(project)
    host = await sync_to_async(Host.objects.get)(uuid=welcome["host"])
    assert host.user_id is None
    # Signed for this host (the signature carries a timestamp, so compare what it says).
    assert read_host_token(welcome["host_token"]) == str(host.uuid)
    assert welcome["user"] is None
    assert welcome["limits"]["max_in_flight"] == 4
    assert (host.cores, host.platform_class, host.has_wasm) == (2, "test-x86_64", True)
    await client.close()


async def test_a_returning_anonymous_host_with_its_token_is_recognised(project):
    first, welcome = await anonymous(project)
    await first.close()
    again, welcome2 = await anonymous(
        project, host=welcome["host"], host_token=welcome["host_token"]
    )
    assert welcome2["host"] == welcome["host"]
    await again.close()


async def test_a_host_id_without_its_token_gets_a_new_host(project):
    first, welcome = await anonymous(project)
    await first.close()
    again, welcome2 = await anonymous(project, host=welcome["host"], host_token="forged")
    assert welcome2["host"] != welcome["host"]
    await again.close()


async def test_anonymous_without_a_project_is_closed_4001(db):
    client = Client()
    await client.connect()
    await client.send({"type": "hello", "v": 1, "capabilities": {"cores": 1}})
    assert (await client.receive())["type"] == "notice"
    assert await client.closed_with() == 4001


async def test_an_unknown_project_is_closed_4004(project):
    client = Client()
    await client.connect()
    await client.send({"type": "hello", "v": 1, "project": "nope", "capabilities": {"cores": 1}})
    await client.receive()
    assert await client.closed_with() == 4004


async def test_an_unsupported_version_is_closed_4000(project):
    client = Client()
    await client.connect()
    await client.send(
        {"type": "hello", "v": 99, "project": project.slug, "capabilities": {"cores": 1}}
    )
    assert await client.closed_with() == 4000


async def test_a_banned_host_is_closed_4003(project):
    first, welcome = await anonymous(project)
    await first.close()
    await sync_to_async(Host.objects.filter(uuid=welcome["host"]).update)(banned=True)
    client = Client()
    await client.connect()
    await client.send(
        {
            "type": "hello",
            "v": 1,
            "project": project.slug,
            "host": welcome["host"],
            "host_token": welcome["host_token"],
            "capabilities": {"cores": 1},
        }
    )
    await client.receive()
    assert await client.closed_with() == 4003


async def test_messages_before_hello_are_refused(project):
    client = Client()
    await client.connect()
    reply = await client.ask({"type": "request", "n": 1})
    assert reply["code"] == "hello_first"
    await client.close()


async def test_a_second_hello_is_refused(project):
    client, _ = await anonymous(project)
    reply = await client.ask(
        {"type": "hello", "v": 1, "project": project.slug, "capabilities": {"cores": 1}}
    )
    assert reply["code"] == "already_hello"
    await client.close()


async def test_request_assigns_tasks_with_lease_deadline_and_kernel(project):
    client, _ = await anonymous(project)
    assign = await client.ask({"type": "request", "n": 3})
    assert len(assign["tasks"]) == 3
    task = assign["tasks"][0]
    assert task["project"] == "squares"
    assert task["app"]["kernel_url"].endswith(task["app"]["kernel_sha256"] + ".js")
    assert task["app"]["wasm_url"] is None
    assert "x" in task["input"]
    replica = await sync_to_async(Replica.objects.get)(id=task["replica"])
    assert replica.server_state == ServerState.IN_PROGRESS
    assert replica.lease_token == task["lease"]
    await client.close()


async def test_requests_beyond_the_prefetch_limit_get_retry_after(project):
    client, welcome = await anonymous(project)
    limit = welcome["limits"]["max_in_flight"]
    first = await client.ask({"type": "request", "n": 64})
    assert len(first["tasks"]) == limit
    more = await client.ask({"type": "request", "n": 1})
    assert more["tasks"] == []
    assert more["retry_after"] > 0
    await client.close()


async def test_a_result_is_acknowledged_and_recorded(project):
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    output = {"y": task["input"]["x"] ** 2}
    ack = await client.ask(
        {
            "type": "result",
            "replica": task["replica"],
            "lease": task["lease"],
            "output": output,
            "cpu_time": 0.5,
        }
    )
    assert ack == {"type": "ack", "of": "result", "replica": task["replica"], "deadline": None}
    replica = await sync_to_async(Replica.objects.get)(id=task["replica"])
    assert (replica.outcome, replica.output) == (Outcome.SUCCESS, output)
    await client.close()


async def test_a_replayed_result_is_refused_and_changes_nothing(project):
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    result = {
        "type": "result",
        "replica": task["replica"],
        "lease": task["lease"],
        "output": {"y": 1},
        "cpu_time": 1,
    }
    await client.ask(result)
    reply = await client.ask({**result, "output": {"y": 2}})
    assert (reply["code"], reply["replica"]) == ("not_in_progress", task["replica"])
    replica = await sync_to_async(Replica.objects.get)(id=task["replica"])
    assert replica.output == {"y": 1}
    await client.close()


async def test_a_result_for_another_hosts_replica_is_refused(project):
    owner, _ = await anonymous(project)
    (task,) = (await owner.ask({"type": "request", "n": 1}))["tasks"]
    thief, _ = await anonymous(project)
    reply = await thief.ask(
        {
            "type": "result",
            "replica": task["replica"],
            "lease": task["lease"],
            "output": {"y": 0},
            "cpu_time": 1,
        }
    )
    assert reply["code"] == "not_yours"
    replica = await sync_to_async(Replica.objects.get)(id=task["replica"])
    assert replica.server_state == ServerState.IN_PROGRESS
    await owner.close()
    await thief.close()


async def test_a_late_result_is_refused(project):
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    await sync_to_async(Replica.objects.filter(id=task["replica"]).update)(
        deadline=timezone.now() - timedelta(seconds=1)
    )
    reply = await client.ask(
        {
            "type": "result",
            "replica": task["replica"],
            "lease": task["lease"],
            "output": {},
            "cpu_time": 1,
        }
    )
    assert reply["code"] == "lease_expired"
    await client.close()


async def test_a_wrong_lease_or_unknown_replica_is_refused(project):
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    bad = {
        "type": "result",
        "replica": task["replica"],
        "lease": "0" * 32,
        "output": {},
        "cpu_time": 1,
    }
    assert (await client.ask(bad))["code"] == "bad_lease"
    assert (await client.ask({**bad, "replica": 10**12}))["code"] == "unknown_replica"
    await client.close()


async def test_an_oversized_output_is_refused(project, settings):
    settings.COMPUTE = {**settings.COMPUTE, "MAX_OUTPUT_BYTES": 1024}
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    reply = await client.ask(
        {
            "type": "result",
            "replica": task["replica"],
            "lease": task["lease"],
            "output": "x" * 5000,
            "cpu_time": 1,
        }
    )
    assert reply["code"] == "output_too_large"
    await client.close()


async def test_a_client_error_is_acknowledged_and_ends_the_replica(project):
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    ack = await client.ask(
        {"type": "error", "replica": task["replica"], "lease": task["lease"], "reason": "OOM"}
    )
    assert ack["of"] == "error"
    replica = await sync_to_async(Replica.objects.get)(id=task["replica"])
    assert (replica.outcome, replica.error_reason) == (Outcome.CLIENT_ERROR, "OOM")
    await client.close()


async def test_progress_is_acknowledged_with_the_deadline(project):
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    ack = await client.ask(
        {"type": "progress", "replica": task["replica"], "lease": task["lease"], "fraction": 0.5}
    )
    assert ack["of"] == "progress"
    assert ack["deadline"] is not None
    await client.close()


async def test_heartbeat_is_answered(project):
    client, _ = await anonymous(project)
    assert (await client.ask({"type": "heartbeat"}))["type"] == "heartbeat"
    await client.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        (json.dumps({"n": 1}), "bad_message"),
        (json.dumps({"type": "teleport"}), "unknown_type"),
        (json.dumps({"type": "request", "n": 0}), "bad_message"),
        (json.dumps({"type": "request", "n": "3"}), "bad_message"),
        (json.dumps({"type": "request", "n": 1, "extra": True}), "bad_message"),
        (
            json.dumps({"type": "result", "replica": 1, "lease": "x", "output": 1, "cpu_time": 1}),
            "bad_message",
        ),
        (
            json.dumps({"type": "progress", "replica": 1, "lease": "a" * 32, "fraction": 2}),
            "bad_message",
        ),
        (
            json.dumps(
                {"type": "result", "replica": 1, "lease": "a" * 32, "output": 1, "cpu_time": -1}
            ),
            "bad_cpu_time",
        ),
        (
            json.dumps(
                {"type": "result", "replica": 1, "lease": "a" * 32, "output": 1, "cpu_time": "1"}
            ),
            "bad_cpu_time",
        ),
        (
            '{"type": "result", "replica": 1, "lease": "%s", "output": 1, "cpu_time": NaN}'
            % ("a" * 32),
            "bad_json",
        ),
    ],
)
async def test_malformed_messages_get_their_error_code(project, frame, code):
    client, _ = await anonymous(project)
    reply = await client.ask(frame)
    assert reply["code"] == code
    # The connection still works.
    assert (await client.ask({"type": "heartbeat"}))["type"] == "heartbeat"
    await client.close()


async def test_the_test_client_holds_its_messages_to_the_schema(project):
    """A message a test sends as a dict is one the schema allows: the client refuses to send
    anything else (malformed frames go as text, on purpose)."""
    client, _ = await anonymous(project)
    with pytest.raises(jsonschema.ValidationError):
        await client.send({"type": "request", "n": 0})
    with pytest.raises(AssertionError, match="undocumented client message"):
        await client.send({"type": "teleport"})
    assert (await client.ask({"type": "heartbeat"}))["type"] == "heartbeat"
    await client.close()


async def test_binary_frames_are_refused(project):
    client, _ = await anonymous(project)
    await client.ws.send_to(bytes_data=b"\x00\x01")
    assert (await client.receive())["code"] == "bad_json"
    await client.close()


async def test_an_oversized_message_is_refused(project, settings):
    settings.PROTOCOL = {**settings.PROTOCOL, "MAX_MESSAGE_BYTES": 2048}
    client, _ = await anonymous(project)
    reply = await client.ask(json.dumps({"type": "heartbeat", "pad": "é" * 1500}))
    assert reply["code"] == "too_large"
    await client.close()


async def test_a_flood_is_rate_limited_then_closed(project, settings):
    settings.PROTOCOL = {**settings.PROTOCOL, "MESSAGES_PER_SECOND": 5.0, "MAX_VIOLATIONS": 5}
    client, _ = await anonymous(project)
    for _ in range(30):
        await client.send({"type": "heartbeat"})
    codes = []
    while True:
        output = await client.ws.receive_output(3)
        if output["type"] == "websocket.close":
            assert output["code"] == 4008
            break
        codes.append(json.loads(output["text"]).get("code"))
    assert "rate_limited" in codes
    # The frames still queued behind the close are not handled: nothing is sent after it,
    # not even a second close.
    assert await client.ws.receive_nothing(timeout=0.5)


async def test_an_idle_connection_is_closed(project, settings):
    settings.PROTOCOL = {**settings.PROTOCOL, "IDLE_SECONDS": 0.3}
    client, _ = await anonymous(project)
    assert await client.closed_with(wait=5) == 4408


async def test_a_reconnecting_host_resumes_its_leased_replicas(project):
    client, welcome = await anonymous(project)
    tasks = (await client.ask({"type": "request", "n": 2}))["tasks"]
    await client.close()
    again, welcome2 = await anonymous(
        project, host=welcome["host"], host_token=welcome["host_token"]
    )
    assert sorted(t["replica"] for t in welcome2["resume"]) == sorted(t["replica"] for t in tasks)
    assert {t["lease"] for t in welcome2["resume"]} == {tasks[0]["lease"]}
    # And it can finish them.
    t = welcome2["resume"][0]
    ack = await again.ask(
        {
            "type": "result",
            "replica": t["replica"],
            "lease": t["lease"],
            "output": {"y": 0},
            "cpu_time": 1,
        }
    )
    assert ack["type"] == "ack"
    await again.close()


async def test_a_signed_in_volunteer_joins_the_project_by_saying_hello(project, session_cookie):
    user, cookie = await sync_to_async(session_cookie)()
    client = Client(cookie=cookie)
    welcome = await client.hello(project=project.slug)
    assert welcome["user"] == user.username
    assert welcome["host_token"] is None
    host = await sync_to_async(Host.objects.get)(uuid=welcome["host"])
    assert host.user_id == user.id
    assert await sync_to_async(
        Membership.objects.filter(user=user, project=project, state="active").exists
    )()
    assert len((await client.ask({"type": "request", "n": 1}))["tasks"]) == 1
    await client.close()


async def test_signing_in_claims_the_anonymous_host_and_its_credit(project, session_cookie):
    anon, welcome = await anonymous(project)
    host = await sync_to_async(Host.objects.get)(uuid=welcome["host"])

    def earn():
        CreditEntry.objects.create(
            replica_id=1,
            workunit_id=1,
            project=project,
            host=host,
            amount=7.0,
            granted_at=timezone.now(),
        )
        Host.objects.filter(id=host.id).update(total_credit=7.0)

    await sync_to_async(earn)()
    await anon.close()
    user, cookie = await sync_to_async(session_cookie)()
    client = Client(cookie=cookie)
    claimed = await client.hello(host=welcome["host"], host_token=welcome["host_token"])
    assert claimed["host"] == welcome["host"]
    host = await sync_to_async(Host.objects.get)(id=host.id)
    assert host.user_id == user.id
    assert (await sync_to_async(Volunteer.objects.get)(user=user)).total_credit == 7.0
    assert (await sync_to_async(CreditEntry.objects.get)(replica_id=1)).user_id == user.id
    membership = await sync_to_async(Membership.objects.get)(user=user, project=project)
    assert membership.total_credit == 7.0
    await client.close()


async def test_a_signed_in_user_cannot_take_another_users_host(project, session_cookie):
    _owner, owner_cookie = await sync_to_async(session_cookie)()
    first = Client(cookie=owner_cookie)
    welcome = await first.hello(project=project.slug)
    await first.close()
    _, cookie = await sync_to_async(session_cookie)()
    other = Client(cookie=cookie)
    welcome2 = await other.hello(project=project.slug, host=welcome["host"])
    assert welcome2["host"] != welcome["host"]
    await other.close()


async def test_hosts_are_told_to_stop_work_on_a_cancelled_batch(project):
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    batch = await sync_to_async(lambda: project.batches.get())()
    await sync_to_async(submission.cancel_batch)(batch)
    message = await client.receive()
    assert message == {"type": "cancel", "replicas": [task["replica"]]}
    await client.close()


async def test_credit_is_announced_live_when_a_result_validates(project):
    a, _ = await anonymous(project)
    b, _ = await anonymous(project)
    (ta,) = (await a.ask({"type": "request", "n": 1}))["tasks"]
    tb = None
    while tb is None or tb["workunit"] != ta["workunit"]:
        got = (await b.ask({"type": "request", "n": 1}))["tasks"]
        tb = got[0] if got else None
        if tb and tb["workunit"] != ta["workunit"]:
            await b.ask(
                {"type": "error", "replica": tb["replica"], "lease": tb["lease"], "reason": "skip"}
            )
    output = {"y": ta["input"]["x"] ** 2}
    await a.ask(
        {
            "type": "result",
            "replica": ta["replica"],
            "lease": ta["lease"],
            "output": output,
            "cpu_time": 1,
        }
    )
    await b.ask(
        {
            "type": "result",
            "replica": tb["replica"],
            "lease": tb["lease"],
            "output": output,
            "cpu_time": 1,
        }
    )
    # Validation ran after commit (in-process here); both hosts hear about their credit.
    await sync_to_async(validation.validate_pending)()
    for client in (a, b):
        message = await client.receive()
        assert message["type"] == "credit"
        assert message["amount"] >= 0
    await a.close()
    await b.close()


async def test_the_project_socket_sends_live_stats(project):
    client = Client(path=f"/ws/projects/{project.slug}/")
    await client.connect()
    message = json.loads(await client.ws.receive_from(3))
    assert message["type"] == "stats"
    assert message["batch"]["total"] == 6
    await client.close()


async def test_the_project_socket_refuses_private_projects(project):
    await sync_to_async(type(project).objects.filter(id=project.id).update)(is_public=False)
    client = Client(path=f"/ws/projects/{project.slug}/")
    connected, code = await client.ws.connect()
    assert not connected
    assert code == 4004
    await client.ws.disconnect()


async def test_sockets_from_other_sites_are_refused(project):
    from channels.testing import WebsocketCommunicator

    from socialgrid.asgi import application

    ws = WebsocketCommunicator(
        application, "/ws/worker/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await ws.connect()
    assert not connected
    await ws.disconnect()


async def test_stale_results_after_an_absence_do_not_get_a_host_disconnected(project, settings):
    settings.PROTOCOL = {**settings.PROTOCOL, "MAX_VIOLATIONS": 2}
    client, _ = await anonymous(project)
    (task,) = (await client.ask({"type": "request", "n": 1}))["tasks"]
    result = {
        "type": "result",
        "replica": task["replica"],
        "lease": task["lease"],
        "output": {"y": 1},
        "cpu_time": 1,
    }
    await client.ask(result)
    for _ in range(5):
        assert (await client.ask(result))["code"] == "not_in_progress"
    assert (await client.ask({"type": "heartbeat"}))["type"] == "heartbeat"
    await client.close()
