"""Hostile volunteers over the real protocol: the real ASGI router and ``WorkerConsumer``,
the real engine, Celery tasks run eagerly after the writer's commit (a result that completes
a quorum is validated right after its flush; the volunteers here wait for the writer to
settle after each result, so the next round sees the verdict).

- A population of hosts, a fifth of them cheaters each returning its own wrong output: no
  wrong output becomes canonical, cheaters earn nothing and their quota shrinks.
- Adaptive replication: a host trusted with unreplicated work turns bad and is caught.
- Every refusal a hostile client can provoke, each with its code and a whole-database
  snapshot identical before and after the refused message.
- Inflated claimed credit: the server's computation decides.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest
from asgiref.sync import sync_to_async

from compute import credit, feeder, submission, transitioner
from compute.dispatch import writer
from compute.models import CreditEntry, Host, HostApp, Replica, WorkUnit
from compute.ratelimit import TokenBucket
from compute.states import AssimilateState, Outcome, Replication, ValidateState
from tests.compute.hostile_support import (
    check_cheaters_caught,
    database_snapshot,
    snapshot_changes,
    wrong_output,
)
from tests.compute.protocol_client import Client
from tests.support import square

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.no_error_logs,
]


@pytest.fixture(autouse=True)
def _engine_in_process(settings):
    """Validation and assimilation run eagerly at both test levels, PostgreSQL included: no
    worker reads the broker here. tests/integration/test_hostile_clients.py runs the same
    attack against a real Celery worker."""
    # Celery reads this Django setting each time (socialgrid/celery.py configures it from
    # the settings), and the settings fixture puts it back afterwards: setting Celery's own
    # value instead would outlive the test.
    settings.CELERY_TASK_ALWAYS_EAGER = True


UNSOLICITED = {"credit", "cancel", "notice", "membership"}


class Volunteer:
    """One host on its own socket. ``answer`` decides each task's output."""

    def __init__(self, answer: Callable[[dict], Awaitable[Any]]) -> None:
        self.client = Client()
        self.answer = answer
        self.host_id: int | None = None
        self.events: list[dict[str, Any]] = []

    async def start(self, project_slug: str) -> None:
        welcome = await self.client.hello(project=project_slug)
        self.host_id = (await sync_to_async(Host.objects.get)(uuid=welcome["host"])).id

    async def reply(self, message: dict[str, Any] | str) -> dict[str, Any]:
        """The answer to ``message``; credit and cancel events arriving meanwhile are kept."""
        await self.client.send(message)
        while True:
            received = await self.client.receive(wait=10)
            if received["type"] in UNSOLICITED:
                self.events.append(received)
                continue
            return received

    async def work(self, n: int) -> int:
        """Ask for up to ``n`` tasks and return each at once; the number returned."""
        assign = await self.reply({"type": "request", "n": n})
        assert assign["type"] == "assign", assign
        for task in assign["tasks"]:
            ack = await self.reply(
                {
                    "type": "result",
                    "replica": task["replica"],
                    "lease": task["lease"],
                    "output": await self.answer(task),
                    "cpu_time": 1.0,
                }
            )
            assert ack == {
                "type": "ack",
                "of": "result",
                "replica": task["replica"],
                "deadline": None,
            }, ack
            # The ack comes at commit; the validation it queued runs right after.
            await writer.get().settled()
        return len(assign["tasks"])


def honest() -> Callable[[dict], Awaitable[Any]]:
    async def answer(task: dict) -> Any:
        return square(task["input"])

    return answer


def cheating(k: int) -> Callable[[dict], Awaitable[Any]]:
    async def answer(task: dict) -> Any:
        return wrong_output(task["input"], k)

    return answer


def periodic_sweeps() -> None:
    """What the beat schedule runs between rounds: the feeder and the transitioner (never
    the validator: validation comes from the results themselves)."""
    feeder.refill_all()
    transitioner.run_transitioner()


def unfinished(batch_id: int) -> int:
    return (
        WorkUnit.objects.filter(batch_id=batch_id)
        .exclude(assimilate_state=AssimilateState.DONE)
        .count()
    )


async def run_rounds(
    volunteers: list[Volunteer], batch_id: int, *, per_request: int = 1, max_rounds: int = 60
) -> int:
    """Every volunteer asks for work and returns it, round after round, until the batch is
    assimilated; returns the rounds it took."""
    for rounds in range(1, max_rounds + 1):
        for v in volunteers:
            await v.work(per_request)
        if not await sync_to_async(unfinished)(batch_id):
            return rounds
        await sync_to_async(periodic_sweeps)()
    left = await sync_to_async(unfinished)(batch_id)
    raise AssertionError(f"{left} work units unfinished after {max_rounds} rounds")


async def close_all(volunteers: list[Volunteer]) -> None:
    for v in volunteers:
        await v.client.close()


# --- a fifth of the hosts cheat ---------------------------------------------------------------


@pytest.mark.parametrize(("quorum", "hosts", "workunits"), [(2, 25, 40), (3, 20, 30)])
async def test_cheaters_never_make_a_canonical_output_earn_nothing_and_lose_quota(
    project_factory, settings, quorum, hosts, workunits
):
    """``hosts`` hosts on their own sockets, one in five a cheater returning a wrong output
    of its own (cheaters never agree with each other), the rest the app's reference output;
    quorum ``quorum``; until every work unit is assimilated."""
    settings.PROTOCOL = {**settings.PROTOCOL, "MESSAGES_PER_SECOND": 1000.0}
    project = await sync_to_async(project_factory)(
        min_quorum=quorum, target_nresults=quorum, delay_bound=3600
    )
    app = await sync_to_async(project.apps.get)()
    batch = await sync_to_async(submission.create_batch)(
        project, app, [{"x": i} for i in range(workunits)], name="hostile"
    )
    volunteers = [Volunteer(cheating(i // 5) if i % 5 == 0 else honest()) for i in range(hosts)]
    for v in volunteers:
        await v.start(project.slug)
    cheaters = [v.host_id for i, v in enumerate(volunteers) if i % 5 == 0]
    honest_ids = [v.host_id for i, v in enumerate(volunteers) if i % 5 != 0]
    assert len(cheaters) == hosts // 5

    await run_rounds(volunteers, batch.id)
    await close_all(volunteers)

    figures = await sync_to_async(check_cheaters_caught)(
        batch.id, app.id, honest_ids, cheaters, square, project.daily_quota_per_core
    )
    assert figures.workunits == workunits
    assert figures.wrong_canonical == 0
    assert figures.cheater_credit == 0
    assert figures.honest_credit > 0
    assert figures.extra_replica_workunits > 0
    # No credit was ever announced to a cheater's socket.
    for v in volunteers:
        if v.host_id in cheaters:
            assert not [e for e in v.events if e["type"] == "credit"]
    # Honest hosts' quota never shrank.
    quotas = await sync_to_async(
        lambda: set(
            HostApp.objects.filter(host_id__in=honest_ids, app=app).values_list(
                "daily_quota", flat=True
            )
        )
    )()
    assert quotas == {project.daily_quota_per_core}


# --- adaptive replication: a trusted host turns bad ------------------------------------------


@dataclass
class Turncoat:
    """A host that answers honestly until told to cheat; then it cheats on the work units
    it computes alone (``only_alone``) or on everything."""

    cheat: bool = False
    only_alone: bool = True
    cheated: list[int] = field(default_factory=list)  # replica ids

    def answer(self) -> Callable[[dict], Awaitable[Any]]:
        async def answer(task: dict) -> Any:
            if self.cheat:
                wu = await sync_to_async(WorkUnit.objects.get)(id=task["workunit"])
                if not self.only_alone or wu.replication == Replication.UNREPLICATED:
                    self.cheated.append(task["replica"])
                    return wrong_output(task["input"], 0)
            return square(task["input"])

        return answer


def consecutive_valid(host_id: int, app_id: int) -> int:
    record = HostApp.objects.filter(host_id=host_id, app_id=app_id).first()
    return record.consecutive_valid if record else 0


async def test_a_trusted_host_that_turns_bad_is_caught_and_loses_its_trust(
    project_factory, settings
):
    """Trust is built over the protocol: the host returns correct results alongside honest
    hosts until it has ``TRUST_THRESHOLD`` (10) valid results in a row, about twenty
    results in all. It is then given work units to compute alone (adaptive replication
    leaves them unreplicated with probability 1 - 1/consecutive_valid) and cheats on the
    first such one. Every unreplicated result is spot-checked here (``spot_check_rate``
    1.0), so the catch does not depend on the spot check's draw: the wrong result is found
    invalid against the Python reference, earns nothing, resets the host's streak and halves
    its quota, and the work unit is escalated to the full quorum and settled by honest
    hosts. The host's next work unit is replicated (it is no longer trusted), and a wrong
    result there is outvoted by the quorum."""
    from compute.reliability import TRUST_THRESHOLD

    settings.PROTOCOL = {**settings.PROTOCOL, "MESSAGES_PER_SECOND": 1000.0}
    project = await sync_to_async(project_factory)(
        min_quorum=2,
        target_nresults=2,
        app_kwargs={"adaptive_replication": True, "spot_check_rate": 1.0},
    )
    app = await sync_to_async(project.apps.get)()
    batch = await sync_to_async(submission.create_batch)(
        project, app, [{"x": i} for i in range(80)], name="adaptive"
    )
    turncoat = Turncoat()
    suspect = Volunteer(turncoat.answer())
    others = [Volunteer(honest()) for _ in range(4)]
    everyone = [suspect, *others]
    for v in everyone:
        await v.start(project.slug)
    start_quota = project.daily_quota_per_core

    # 1. Trust, earned with correct results over the protocol.
    for _ in range(40):
        if await sync_to_async(consecutive_valid)(suspect.host_id, app.id) >= TRUST_THRESHOLD:
            break
        for v in everyone:
            await v.work(1)
        await sync_to_async(periodic_sweeps)()
    trusted_streak = await sync_to_async(consecutive_valid)(suspect.host_id, app.id)
    assert trusted_streak >= TRUST_THRESHOLD

    # 2. New work arrives (the first batch's work units have all been leased once by now,
    # and adaptive replication decides at a work unit's first lease); the host turns bad on
    # the first work unit it is given alone.
    fresh = await sync_to_async(submission.create_batch)(
        project, app, [{"x": 1000 + i} for i in range(40)], name="more"
    )
    turncoat.cheat = True
    for _ in range(60):
        await suspect.work(1)
        if turncoat.cheated:
            break
        for v in others:
            await v.work(1)
        await sync_to_async(periodic_sweeps)()
    assert turncoat.cheated, "the trusted host was never given a work unit alone"
    (bad,) = turncoat.cheated

    def caught() -> tuple[Replica, WorkUnit, HostApp]:
        replica = Replica.objects.get(id=bad)
        return replica, replica.workunit, HostApp.objects.get(host_id=suspect.host_id, app=app)

    replica, wu, record = await sync_to_async(caught)()
    # The spot check ran when the result came in: invalid, escalated, nothing earned.
    assert replica.validate_state == ValidateState.INVALID
    assert wu.replication == Replication.ESCALATED
    assert (wu.min_quorum, wu.target_nresults) == (2, 2)
    assert wu.canonical_replica_id is None
    assert record.consecutive_valid == 0
    assert record.daily_quota < start_quota
    assert not await sync_to_async(CreditEntry.objects.filter(replica_id=bad).exists)()

    # 3. No longer trusted: its next work unit goes to the full quorum, where a wrong result
    # is outvoted.
    turncoat.only_alone = False
    assign = await suspect.reply({"type": "request", "n": 1})
    (task,) = assign["tasks"]
    wu2 = await sync_to_async(WorkUnit.objects.get)(id=task["workunit"])
    assert wu2.replication == Replication.ESCALATED
    ack = await suspect.reply(
        {
            "type": "result",
            "replica": task["replica"],
            "lease": task["lease"],
            "output": await suspect.answer(task),
            "cpu_time": 1.0,
        }
    )
    assert ack["type"] == "ack"

    # The honest hosts settle both work units and the rest of the work.
    await run_rounds(others, batch.id, per_request=2, max_rounds=100)
    await run_rounds(others, fresh.id, per_request=2, max_rounds=100)
    await close_all(everyone)

    def verdicts() -> None:
        for w in WorkUnit.objects.filter(id__in=[wu.id, wu2.id]).select_related(
            "canonical_replica"
        ):
            assert w.canonical_replica is not None
            assert w.canonical_replica.output == square(w.input)
            assert w.canonical_replica.host_id != suspect.host_id
        for replica_id in turncoat.cheated:
            r = Replica.objects.get(id=replica_id)
            assert r.validate_state == ValidateState.INVALID, (replica_id, r.validate_state)
        host = Host.objects.get(id=suspect.host_id)
        cheated = CreditEntry.objects.filter(replica_id__in=turncoat.cheated)
        assert not cheated.exists()
        assert host.n_invalid == len(turncoat.cheated) == 2
        # What it earned, it earned before turning: its valid replicas, nothing more.
        valid = Replica.objects.filter(host_id=host.id, validate_state=ValidateState.VALID)
        earned = CreditEntry.objects.filter(host_id=host.id)
        assert set(earned.values_list("replica_id", flat=True)) == set(
            valid.values_list("id", flat=True)
        )

    await sync_to_async(verdicts)()


# --- refusals: each with its code, and nothing else changed -----------------------------------


@dataclass
class World:
    project_slug: str
    owner: Client
    thief: Client
    accepted: dict[str, Any]  # a task whose result the server accepted
    held: list[dict[str, Any]]  # tasks still in progress for the owner
    thief_host: str  # the thief's host id


def result_frame(task: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "type": "result",
        "replica": task["replica"],
        "lease": task["lease"],
        "output": square(task["input"]),
        "cpu_time": 1.0,
        **fields,
    }


async def build_world(project) -> World:
    owner = Client()
    await owner.hello(project=project.slug)
    tasks = (await owner.ask({"type": "request", "n": 4}))["tasks"]
    assert len(tasks) == 4
    accepted, *held = tasks
    ack = await owner.ask(result_frame(accepted))
    assert ack["type"] == "ack"
    thief = Client()
    welcome = await thief.hello(project=project.slug)
    return World(project.slug, owner, thief, accepted, held, welcome["host"])


async def expire(world: World) -> None:
    await sync_to_async(Replica.objects.filter(id=world.held[1]["replica"]).update)(
        deadline=timezone.now() - timedelta(seconds=1)
    )


async def attack(world: World, case: str) -> tuple[Client, list[str]]:
    """Send the case's hostile frames; returns the socket used and the error codes received
    (in order) for them."""
    w, own = world, world.held[0]

    async def one(client: Client, frame: dict[str, Any] | str) -> tuple[Client, list[str]]:
        # Sent as text: a hostile frame is malformed on purpose, past the schema check.
        reply = await client.ask(frame if isinstance(frame, str) else json.dumps(frame))
        assert reply["type"] == "error", reply
        return client, [reply["code"]]

    if case == "result for a replica leased to another host, with its lease token":
        return await one(w.thief, result_frame(own, output={"y": -1}))
    if case == "error report for a replica leased to another host":
        return await one(
            w.thief,
            {"type": "error", "replica": own["replica"], "lease": own["lease"], "reason": "x"},
        )
    if case == "progress for a replica leased to another host":
        return await one(
            w.thief,
            {"type": "progress", "replica": own["replica"], "lease": own["lease"], "fraction": 0.1},
        )
    if case == "result with a forged lease token":
        return await one(w.owner, result_frame(own, lease="0123456789abcdef" * 2))
    if case == "replay of an accepted result, with another output":
        return await one(w.owner, result_frame(w.accepted, output={"y": 12345}))
    if case == "replay of an accepted result as an error report":
        a = w.accepted
        return await one(
            w.owner, {"type": "error", "replica": a["replica"], "lease": a["lease"], "reason": "x"}
        )
    if case == "result after the deadline":
        return await one(w.owner, result_frame(w.held[1]))
    if case == "result for an unknown replica":
        return await one(w.owner, result_frame(own, replica=10**12))
    if case == "result claiming its own credit":
        return await one(w.owner, result_frame(own, claimed_credit=1e9))
    if case == "second hello inflating the benchmark":
        caps = {"cores": 256, "benchmark_fpops": 1e13}
        return await one(w.owner, {"type": "hello", "v": 1, "capabilities": caps})
    if case == "second hello taking over another host":
        return await one(
            w.owner,
            {"type": "hello", "v": 1, "host": w.thief_host, "capabilities": {"cores": 1}},
        )
    if case == "cpu time as a string":
        return await one(w.owner, result_frame(own, cpu_time="1"))
    if case == "replica id as a string":
        return await one(w.owner, result_frame(own, replica=str(own["replica"])))
    if case == "negative cpu time":
        return await one(w.owner, result_frame(own, cpu_time=-5))
    if case == "cpu time an integer beyond a double":
        return await one(w.owner, result_frame(own, cpu_time=10**400))
    if case == "output holding a NUL character":
        return await one(w.owner, result_frame(own, output={"y": "\x00"}))
    if case == "NaN cpu time":
        text = json.dumps(result_frame(own)).replace('"cpu_time": 1.0', '"cpu_time": NaN')
        return await one(w.owner, text)
    if case == "truncated JSON":
        return await one(w.owner, json.dumps(result_frame(own))[:-7])
    if case == "a JSON array":
        return await one(w.owner, json.dumps([result_frame(own)]))
    if case == "binary frame":
        await w.owner.ws.send_to(bytes_data=json.dumps(result_frame(own)).encode())
        return w.owner, [(await w.owner.receive())["code"]]
    if case == "unknown message type":
        return await one(w.owner, {**result_frame(own), "type": "grant_credit"})
    if case == "oversized message":
        return await one(w.owner, result_frame(own, output={"y": "9" * 5000}))
    if case == "oversized output":
        return await one(w.owner, result_frame(own, output={"y": "9" * 1500}))
    if case == "result before hello":
        stranger = Client()
        await stranger.connect()
        return await one(stranger, result_frame(own))
    if case == "a flood: a genuine result past the message rate":
        # The bucket holds 4 messages; 12 heartbeats empty it, then the result arrives.
        for _ in range(12):
            await w.owner.send({"type": "heartbeat"})
        await w.owner.send(result_frame(own))
        codes = []
        for _ in range(13):
            reply = await w.owner.receive()
            if reply["type"] == "error":
                codes.append(reply["code"])
        return w.owner, codes
    raise AssertionError(f"unknown case {case!r}")


class ManualClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def bucket_clock(monkeypatch) -> ManualClock:
    """The sockets' message-rate buckets on a clock the test moves: a flood is sent within
    one instant, and a refill is a step of the clock, whatever the machine's load."""
    clock = ManualClock()
    monkeypatch.setattr(TokenBucket, "clock", staticmethod(clock))
    return clock


# (case, expected codes, protocol settings, compute settings)
REFUSALS = [
    ("result for a replica leased to another host, with its lease token", ["not_yours"], {}, {}),
    ("error report for a replica leased to another host", ["not_yours"], {}, {}),
    ("progress for a replica leased to another host", ["not_yours"], {}, {}),
    ("result with a forged lease token", ["bad_lease"], {}, {}),
    ("replay of an accepted result, with another output", ["not_in_progress"], {}, {}),
    ("replay of an accepted result as an error report", ["not_in_progress"], {}, {}),
    ("result after the deadline", ["lease_expired"], {}, {}),
    ("result for an unknown replica", ["unknown_replica"], {}, {}),
    ("result claiming its own credit", ["bad_message"], {}, {}),
    ("second hello inflating the benchmark", ["already_hello"], {}, {}),
    ("second hello taking over another host", ["already_hello"], {}, {}),
    ("cpu time as a string", ["bad_cpu_time"], {}, {}),
    ("replica id as a string", ["bad_message"], {}, {}),
    ("negative cpu time", ["bad_cpu_time"], {}, {}),
    ("cpu time an integer beyond a double", ["bad_cpu_time"], {}, {}),
    ("output holding a NUL character", ["bad_message"], {}, {}),
    ("NaN cpu time", ["bad_json"], {}, {}),
    ("truncated JSON", ["bad_json"], {}, {}),
    ("a JSON array", ["bad_json"], {}, {}),
    ("binary frame", ["bad_json"], {}, {}),
    ("unknown message type", ["unknown_type"], {}, {}),
    ("oversized message", ["too_large"], {"MAX_MESSAGE_BYTES": 4096}, {}),
    ("oversized output", ["output_too_large"], {}, {"MAX_OUTPUT_BYTES": 1024}),
    ("result before hello", ["hello_first"], {}, {}),
    (
        "a flood: a genuine result past the message rate",
        ["rate_limited"] * 9,
        {"MESSAGES_PER_SECOND": 2.0, "MAX_VIOLATIONS": 100},
        {},
    ),
]


@pytest.mark.parametrize(
    ("case", "codes", "protocol", "compute"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
async def test_a_hostile_message_gets_its_code_and_changes_nothing(
    project_factory, settings, bucket_clock, case, codes, protocol, compute
):
    settings.PROTOCOL = {**settings.PROTOCOL, **protocol}
    settings.COMPUTE = {**settings.COMPUTE, **compute}
    project = await sync_to_async(project_factory)(
        slug="hostile", min_quorum=2, target_nresults=2, delay_bound=600
    )
    await sync_to_async(submission.create_batch)(
        project, await sync_to_async(project.apps.get)(), [{"x": i} for i in range(6)], name="b"
    )
    world = await build_world(project)
    if case == "result after the deadline":
        await expire(world)
    if case.startswith("a flood"):
        # The bucket fills again after the world was built; the flood then comes within one
        # instant of its clock.
        bucket_clock.advance(10.0)
    before = await sync_to_async(database_snapshot)()

    client, received = await attack(world, case)
    assert received[-len(codes) :] == codes, received
    if case.startswith("a flood"):
        # The messages within the bucket were answered; everything past it was refused.
        assert set(received) == {"rate_limited"}

    after = await sync_to_async(database_snapshot)()
    assert before == after, snapshot_changes(before, after)
    # Refused, not fatal: the socket still answers (after the bucket refilled, for the flood).
    if case.startswith("a flood"):
        bucket_clock.advance(10.0)
    if client not in (world.owner, world.thief):
        await client.close()
    else:
        assert (await client.ask({"type": "heartbeat"}))["type"] == "heartbeat"
    await world.owner.close()
    await world.thief.close()


async def test_a_flood_past_the_violation_limit_is_closed_and_changes_nothing(
    project_factory, settings, bucket_clock
):
    settings.PROTOCOL = {**settings.PROTOCOL, "MESSAGES_PER_SECOND": 2.0, "MAX_VIOLATIONS": 5}
    project = await sync_to_async(project_factory)(slug="hostile", min_quorum=2, target_nresults=2)
    await sync_to_async(submission.create_batch)(
        project, await sync_to_async(project.apps.get)(), [{"x": i} for i in range(6)], name="b"
    )
    world = await build_world(project)
    bucket_clock.advance(10.0)  # a full bucket; the flood then comes within one instant
    before = await sync_to_async(database_snapshot)()
    own = world.held[0]
    for _ in range(10):
        await world.owner.send(result_frame(own, output={"y": -1}))
    codes = []
    while True:
        output = await world.owner.ws.receive_output(3)
        if output["type"] == "websocket.close":
            assert output["code"] == 4008
            break
        codes.append(json.loads(output["text"]).get("code"))
    # The first result within the bucket is the host's own: recorded. Every later one is
    # refused; the socket closes after the fifth violation.
    assert codes[0] is None
    assert set(codes[1:]) <= {"not_in_progress", "rate_limited"}
    assert "rate_limited" in codes
    await world.owner.ws.disconnect()
    after = await sync_to_async(database_snapshot)()
    changes = snapshot_changes(before, after, limit=100)
    # Only the one accepted result changed anything: its replica, and its work unit's count
    # of results.
    assert changes
    counted = f"compute.WorkUnit {own['workunit']}: changed {{'n_success': (0, 1)}}"
    assert all(
        c.startswith(f"compute.Replica {own['replica']}:") or c == counted for c in changes
    ), changes
    replica = await sync_to_async(Replica.objects.get)(id=own["replica"])
    assert (replica.outcome, replica.output) == (Outcome.SUCCESS, {"y": -1})
    await world.thief.close()


# --- inflated claimed credit -------------------------------------------------------------------


async def test_inflated_benchmark_and_cpu_time_earn_no_more_than_the_servers_computation(
    project_factory, settings
):
    """The protocol has no field to claim credit (a ``claimed_credit`` field is refused:
    see the table above). What a client can inflate is its benchmark (``hello``) and the CPU
    time of a result. The claim counts no more CPU time than passed between lease and
    upload, is capped by the project, and the grant is the minimum of the valid claims: the
    inflating host earns what its honest partner's claim allows."""
    project = await sync_to_async(project_factory)(
        slug="credit", min_quorum=2, target_nresults=2, max_credit_per_replica=100.0
    )
    app = await sync_to_async(project.apps.get)()
    await sync_to_async(submission.create_batch)(project, app, [{"x": 7}], name="b")
    modest, inflated = Client(), Client()
    await modest.hello(project=project.slug)
    caps = {"cores": 1, "benchmark_fpops": 1e13}  # the protocol's largest benchmark
    await inflated.connect()
    welcome = await inflated.ask(
        {"type": "hello", "v": 1, "project": project.slug, "capabilities": caps}
    )
    assert welcome["type"] == "welcome"
    (a,) = (await modest.ask({"type": "request", "n": 1}))["tasks"]
    (b,) = (await inflated.ask({"type": "request", "n": 1}))["tasks"]
    assert a["workunit"] == b["workunit"]
    await asyncio.sleep(0.05)
    assert (await modest.ask(result_frame(a, cpu_time=0.01)))["type"] == "ack"
    # A year of CPU time, the protocol's largest.
    assert (await inflated.ask(result_frame(b, cpu_time=31536000)))["type"] == "ack"
    await writer.get().settled()

    def check() -> None:
        rows = {r.id: r for r in Replica.objects.filter(id__in=[a["replica"], b["replica"]])}
        assert {r.validate_state for r in rows.values()} == {ValidateState.VALID}

        def claim(r: Replica, fpops: float) -> float:
            wall = (r.received_at - r.sent_at).total_seconds()
            full = fpops * r.cpu_time * 200.0 / (86400.0 * 1e9)
            return min(full * min(1.0, wall / r.cpu_time), 100.0)

        ra, rb = rows[a["replica"]], rows[b["replica"]]
        expected = min(claim(ra, 2e9), claim(rb, 1e13))
        assert rb.claimed_credit == pytest.approx(credit.claimed_credit(1e13, 31536000))
        ledger = dict(CreditEntry.objects.values_list("replica_id", "amount"))
        assert ledger == {
            ra.id: pytest.approx(expected, rel=1e-9),
            rb.id: pytest.approx(expected, rel=1e-9),
        }
        assert expected <= claim(ra, 2e9)
        hosts = Host.objects.filter(id__in=[ra.host_id, rb.host_id])
        assert {round(h.total_credit, 12) for h in hosts} == {round(expected, 12)}

    await sync_to_async(check)()
    await modest.close()
    await inflated.close()


async def test_the_suite_covers_every_refusal_a_result_can_meet():
    """Every error code a hostile client can provoke appears in the table above (the
    server's own failure, server_error, aside)."""
    from compute.protocol import Code

    covered = {code for _, codes, _, _ in REFUSALS for code in codes}
    assert covered == set(Code) - {Code.SERVER_ERROR}
