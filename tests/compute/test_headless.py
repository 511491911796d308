"""The headless volunteer against the real ASGI application: uvicorn serves it on a free port
in the test's own event loop (the websockets client needs a real socket), the references run
in worker processes, and the engine's state is read back from the database."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

import pytest
import pytest_asyncio
import uvicorn
from asgiref.sync import sync_to_async

from compute import assimilation, submission, transitioner, validation
from compute.headless import HeadlessVolunteer, Summary
from compute.headless.host import Identity, capabilities, load_identity, save_identity
from compute.headless.references import compute, parse_reference
from compute.headless.volunteer import origin_for
from compute.models import AssimilatedOutput, Batch, CreditEntry, Host, Project, Replica, WorkUnit
from compute.states import AssimilateState, BatchState, Outcome, ServerState
from socialgrid.asgi import application
from tests.compute.protocol_client import check_client_message, check_server_message

SQUARE = {"square": "tests.support.square"}

pytestmark = pytest.mark.no_error_logs(clients=("compute.headless",))

# --- references the worker processes import from this module ---------------------------------


def slow_square(data: dict[str, Any]) -> dict[str, int]:
    time.sleep(data["sleep"])
    return {"y": data["x"] * data["x"]}


def gated_square(data: dict[str, Any]) -> dict[str, int]:
    """Blocks until the test creates the gate file, so a test decides when work finishes."""
    gate = Path(data["gate"])
    deadline = time.monotonic() + 30
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"y": data["x"] * data["x"]}


def explode(data: dict[str, Any]) -> dict[str, int]:
    raise ValueError(f"cannot square {data['x']}")


def die_on_negatives(data: dict[str, Any]) -> dict[str, int]:
    if data["x"] < 0:
        os._exit(3)  # a crash no exception handler sees: the worker process is gone
    return {"y": data["x"] * data["x"]}


# --- the server and helpers --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(predicate: Callable[[], bool], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


class Server:
    """uvicorn serving socialgrid in this event loop; can stop and start on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws/worker/"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            ws="socialgrid.keepalive:KeepaliveProtocol",
            lifespan="off",
            log_level="warning",
            # As the Procfile's web command and runplatform: the server's keep-alive pings.
            ws_ping_interval=settings.PROTOCOL["PING_SECONDS"],
            ws_ping_timeout=settings.PROTOCOL["PING_SECONDS"],
            # uvicorn's own records go to the root logger, where the tests see them.
            log_config=None,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        await until(self._up, "uvicorn to start", within=10)
        if self._task.done():
            self._task.result()

    def _up(self) -> bool:
        return self._server.started or self._task.done()

    @property
    def connections(self) -> int:
        return len(self._server.server_state.connections)

    async def stop(self) -> None:
        if self._task is None or self._task.done():
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 15)
        except TimeoutError:
            # A graceful shutdown waits for every socket's closing handshake; a client that
            # went away mid-handshake on a loaded machine can hold it. Stop regardless.
            self._server.force_exit = True
            await asyncio.wait_for(self._task, 10)


@pytest_asyncio.fixture
async def server(transactional_db, settings):
    # An empty assign asks the volunteer to come back soon, so that idle means idle.
    settings.PROTOCOL = {**settings.PROTOCOL, "RETRY_AFTER_SECONDS": 0.3}
    served = Server()
    await served.start()
    yield served
    await served.stop()


@sync_to_async
def make_batch(project_factory, inputs: list[Any], quorum: int) -> tuple[Project, Batch]:
    project = project_factory(min_quorum=quorum, target_nresults=quorum)
    return project, submission.create_batch(project, project.apps.get(), inputs, name="b")


class CheckedVolunteer(HeadlessVolunteer):
    """Checks every message either way against docs/protocol.schema.json, and keeps the
    codes of the errors the server sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_codes: list[str] = []

    async def _send(self, ws: Any, kind: str, text: str) -> None:
        check_client_message(json.loads(text))
        await super()._send(ws, kind, text)

    def _handle(self, message: dict[str, Any]) -> None:
        check_server_message(message)
        if message["type"] == "error":
            self.error_codes.append(message["code"])
        super()._handle(message)


def volunteer(server: Server, project: Project, **options: Any) -> CheckedVolunteer:
    options.setdefault("references", SQUARE)
    options.setdefault("benchmark_fpops", 1e9)
    options.setdefault("until_idle", 1.0)
    options.setdefault("backoff", (0.1, 0.5))
    return CheckedVolunteer(server.url, project.slug, **options)


async def run_all(*volunteers: HeadlessVolunteer, within: float = 60) -> list[Summary]:
    return await asyncio.wait_for(asyncio.gather(*(v.run() for v in volunteers)), within)


@sync_to_async
def finish_engine() -> None:
    """Celery runs eagerly after commit, so this is usually done already; make sure."""
    validation.validate_pending()
    assimilation.assimilate_pending()


@sync_to_async
def replicas_of(batch: Batch) -> list[Replica]:
    return list(Replica.objects.filter(workunit__batch=batch).select_related("host", "workunit"))


@sync_to_async
def refresh(batch: Batch) -> Batch:
    return Batch.objects.get(id=batch.id)


@sync_to_async
def time_out(replica: int) -> None:
    """The replica's deadline passes and the transitioner times it out."""
    Replica.objects.filter(id=replica).update(deadline=timezone.now() - timedelta(seconds=1))
    transitioner.time_out_replicas()


@sync_to_async
def in_progress_on(host_uuid: str) -> set[int]:
    return set(
        Replica.objects.filter(
            host__uuid=host_uuid, server_state=ServerState.IN_PROGRESS
        ).values_list("id", flat=True)
    )


async def assert_completed(batch: Batch) -> None:
    """Every work unit validated and assimilated, with the square of its input."""
    await finish_engine()
    batch = await refresh(batch)
    assert (batch.state, batch.n_assimilated) == (BatchState.COMPLETED, batch.n_workunits)

    @sync_to_async
    def outcomes() -> tuple[list, list]:
        units = list(
            WorkUnit.objects.filter(batch=batch).values_list(
                "canonical_replica_id", "assimilate_state"
            )
        )
        outputs = list(AssimilatedOutput.objects.filter(batch=batch).values("input", "output"))
        return units, outputs

    units, outputs = await outcomes()
    assert all(canonical and state == AssimilateState.DONE for canonical, state in units)
    assert len(outputs) == batch.n_workunits
    assert all(o["output"] == {"y": o["input"]["x"] ** 2} for o in outputs)


# --- a whole batch -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_two_volunteers_drive_a_batch_to_validated_and_assimilated(server, project_factory):
    project, batch = await make_batch(project_factory, [{"x": i} for i in range(8)], quorum=2)
    first, second = volunteer(server, project, workers=2), volunteer(server, project, workers=2)

    summaries = await run_all(first, second)

    # One replica of each work unit per host: each computed all eight.
    assert [s.done for s in summaries] == [8, 8]
    assert all(s.errors == s.refused == 0 and "no work" in s.stopped for s in summaries)
    assert first.identity.host != second.identity.host
    assert first.error_codes == second.error_codes == []
    await assert_completed(batch)
    replicas = await replicas_of(batch)
    assert {r.outcome for r in replicas} == {Outcome.SUCCESS}
    assert {r.host.platform_class for r in replicas} == {capabilities(1, 1)["platform"]}
    credited = await sync_to_async(
        CreditEntry.objects.filter(workunit_id__in=[r.workunit_id for r in replicas]).count
    )()
    assert credited == len(replicas)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # Validation ran while the volunteers were connected, so they heard of their credit
        # live; with a broker and no worker in this test it runs only in finish_engine().
        assert sum(s.credit for s in summaries) > 0


# --- asking for work on results ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_results_carry_the_request_for_more_work(server, project_factory, settings):
    settings.PROTOCOL = {**settings.PROTOCOL, "RETRY_AFTER_SECONDS": 10}
    inputs = [{"x": i, "sleep": 0.3} for i in range(4)]
    project, batch = await make_batch(project_factory, inputs, quorum=1)
    v = volunteer(server, project, references={"square": f"{__name__}.slow_square"})

    (summary,) = await run_all(v)

    assert summary.done == 4
    # One worker holds two tasks: a request of its own to start, then each result that left
    # one task to compute asked for one more and its ack brought it; the third result's ack
    # had none left and said to come back in 10 s, so the last result asked for nothing.
    assert (v.sent["request"], v.sent["result"], v.sent["result.request"]) == (1, 4, 3)
    assert v.error_codes == []
    await assert_completed(batch)


@pytest.mark.asyncio
async def test_a_refused_result_still_brings_the_work_it_asked_for(
    server, project_factory, tmp_path
):
    gates = [tmp_path / f"gate-{i}" for i in range(3)]
    inputs = [{"x": i, "gate": str(gate)} for i, gate in enumerate(gates)]
    project, _ = await make_batch(project_factory, inputs, quorum=1)
    v = volunteer(server, project, references={"square": f"{__name__}.gated_square"})
    running = asyncio.create_task(v.run())
    await until(lambda: len(v.work.tasks) == 2, "two held tasks")
    first = next(iter(v.work.tasks))  # one worker: the first assigned runs, the other waits

    await time_out(first)
    gates[v.work.tasks[first].input["x"]].touch()
    await until(
        lambda: v.summary.refused == 1 and len(v.work.tasks) == 2, "the refusal and more work"
    )
    # The third task came in the assign that follows the refusal, asked for by the result
    # (the timed-out replica no longer counts against the host's limit of two).
    assert (v.sent["request"], v.sent["result.request"]) == (1, 1)
    assert v.error_codes == ["not_in_progress"]
    for gate in gates:
        gate.touch()
    summary = await asyncio.wait_for(running, 30)

    assert (summary.done, summary.refused) == (2, 1)


# --- stopping, restarting, reconnecting ---------------------------------------------------------


@pytest.mark.asyncio
async def test_a_restarted_volunteer_is_the_same_host_and_resumes_its_replicas(
    server, project_factory, tmp_path
):
    inputs = [{"x": i, "sleep": 0.3} for i in range(5)]
    project, batch = await make_batch(project_factory, inputs, quorum=1)
    state = tmp_path / "volunteer.json"
    slow = {"square": f"{__name__}.slow_square"}
    first = volunteer(server, project, references=slow, state_path=state, until_idle=None)
    running = asyncio.create_task(first.run())

    def mid_batch() -> bool:
        # Both leases held (one running, one queued) and nothing unanswered: the server has
        # no request of ours in hand that could lease one more after the stop.
        return first.summary.done >= 1 and len(first.work.tasks) == 2 and not first.work.reports

    await until(mid_batch, "a result and two held tasks")
    first.stop()
    stopped = await asyncio.wait_for(running, 15)
    assert stopped.stopped == "interrupted"
    host = json.loads(state.read_text())["host"]
    leased = await in_progress_on(host)
    assert leased == first.work.holding

    second = volunteer(server, project, references=slow, state_path=state)
    (resumed,) = await run_all(second)

    assert second.identity.host == host
    assert await sync_to_async(Host.objects.count)() == 1
    assert resumed.resumed == len(leased)
    assert stopped.done + resumed.done == 5
    await assert_completed(batch)
    finished = {r.id: r for r in await replicas_of(batch)}
    assert all(finished[i].outcome == Outcome.SUCCESS for i in leased)


@pytest.mark.asyncio
async def test_a_lost_connection_is_reopened_and_results_sent_after_it(
    server, project_factory, tmp_path
):
    gate = tmp_path / "gate"
    inputs = [{"x": i, "gate": str(gate)} for i in range(2)]
    project, batch = await make_batch(project_factory, inputs, quorum=1)
    v = volunteer(server, project, references={"square": f"{__name__}.gated_square"})
    running = asyncio.create_task(v.run())
    await until(lambda: v.work.busy_workers == 1 and len(v.work.tasks) == 2, "two held tasks")

    await server.stop()
    gate.touch()  # the work finishes while the server is away
    await until(lambda: len(v.work.reports) == 2, "two reports waiting")
    await server.start()
    summary = await asyncio.wait_for(running, 30)

    assert summary.done == 2
    assert v.sent["hello"] >= 2
    await assert_completed(batch)


@pytest.mark.asyncio
async def test_cancelled_replicas_are_dropped_and_running_ones_never_reported(
    server, project_factory, tmp_path
):
    gate = tmp_path / "gate"
    inputs = [{"x": i, "gate": str(gate)} for i in range(3)]
    project, batch = await make_batch(project_factory, inputs, quorum=1)
    v = volunteer(server, project, references={"square": f"{__name__}.gated_square"})
    running = asyncio.create_task(v.run())
    await until(lambda: v.work.busy_workers == 1 and len(v.work.tasks) == 2, "two held tasks")

    await sync_to_async(submission.cancel_batch)(batch)
    await until(lambda: v.summary.cancelled == 2, "the cancel message")
    assert not v.work.holding
    assert v.work.busy_workers == 1  # the running one is abandoned, not killed
    gate.touch()
    await until(lambda: v.work.busy_workers == 0, "the abandoned computation to return")
    summary = await asyncio.wait_for(running, 15)

    assert (summary.done, summary.errors, summary.refused) == (0, 0, 0)
    assert v.sent["result"] == v.sent["error"] == 0
    assert {r.outcome for r in await replicas_of(batch)} <= {Outcome.INIT, Outcome.DIDNT_NEED}


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("references", "reason"),
    [
        ({"square": f"{__name__}.explode"}, "ValueError: cannot square 7"),
        ({}, "no reference for app square"),
    ],
    ids=["reference-raises", "no-reference"],
)
async def test_a_task_that_cannot_be_computed_is_reported_as_an_error(
    server, project_factory, references, reason
):
    project, batch = await make_batch(project_factory, [{"x": 7}], quorum=1)
    v = volunteer(server, project, references=references, max_tasks=1)

    (summary,) = await run_all(v)

    assert (summary.done, summary.errors) == (0, 1)
    (replica,) = [r for r in await replicas_of(batch) if r.host_id is not None]
    assert (replica.outcome, replica.error_reason) == (Outcome.CLIENT_ERROR, reason)


@pytest.mark.asyncio
async def test_a_worker_process_that_dies_fails_its_task_and_is_replaced(server, project_factory):
    project, batch = await make_batch(project_factory, [{"x": -1}, {"x": 2}], quorum=1)
    v = volunteer(server, project, references={"square": f"{__name__}.die_on_negatives"})

    (summary,) = await run_all(v)

    assert (summary.done, summary.errors) == (1, 1)
    replicas = {r.workunit.input["x"]: r for r in await replicas_of(batch) if r.host_id}
    assert replicas[-1].outcome == Outcome.CLIENT_ERROR
    assert replicas[-1].error_reason.startswith("the worker process died")
    assert (replicas[2].outcome, replicas[2].output) == (Outcome.SUCCESS, {"y": 4})


@pytest.mark.asyncio
async def test_an_idle_volunteer_sends_heartbeats(server, project_factory, settings):
    settings.PROTOCOL = {**settings.PROTOCOL, "HEARTBEAT_SECONDS": 0.2, "RETRY_AFTER_SECONDS": 10}
    project, _ = await make_batch(project_factory, [{"x": 1}], quorum=1)
    v = volunteer(server, project, until_idle=1.2)

    (summary,) = await run_all(v)

    assert summary.done == 1
    # Nothing to ask for during the retry delay: heartbeats keep the connection alive.
    assert v.sent["heartbeat"] >= 3
    assert v.sent["request"] == 2


@pytest.mark.asyncio
async def test_pings_keep_a_quiet_volunteer_connected_and_drop_one_that_stopped_answering(
    transactional_db, project_factory, settings
):
    """The server's WebSocket pings, answered by the client's WebSocket library, keep a
    volunteer that says nothing connected; a peer whose network stack stopped answering is
    closed after one ping interval, quietly (no ERROR record)."""
    from websockets.asyncio.client import connect

    settings.PROTOCOL = {**settings.PROTOCOL, "PING_SECONDS": 0.3, "IDLE_SECONDS": 60}
    project, _ = await make_batch(project_factory, [{"x": 1}], quorum=1)
    served = Server()
    await served.start()
    try:
        origin = origin_for(served.url)
        hello = {"type": "hello", "v": 1, "project": project.slug, "capabilities": {"cores": 1}}
        async with connect(served.url, origin=origin, ping_interval=None) as quiet:
            await quiet.send(json.dumps(hello))
            assert json.loads(await quiet.recv())["type"] == "welcome"
            async with connect(served.url, origin=origin, ping_interval=None) as gone:
                await gone.send(json.dumps(hello))
                assert json.loads(await gone.recv())["type"] == "welcome"
                await until(lambda: served.connections == 2, "both connections")
                # The second peer's machine stops reading: its pongs never come.
                gone.transport.pause_reading()
                await until(lambda: served.connections == 1, "the silent peer closed", 10)
            # Many ping intervals later, the first, which only answered pings, is still open.
            await asyncio.sleep(2.0)
            assert served.connections == 1
            await quiet.send('{"type":"heartbeat"}')
            assert json.loads(await quiet.recv())["type"] == "heartbeat"
    finally:
        await served.stop()


@pytest.mark.asyncio
async def test_many_quick_tasks_stay_under_the_servers_rate_limit(
    server, project_factory, settings
):
    settings.PROTOCOL = {**settings.PROTOCOL, "MESSAGES_PER_SECOND": 8}
    project, batch = await make_batch(project_factory, [{"x": i} for i in range(16)], quorum=1)
    v = volunteer(server, project, workers=2)

    (summary,) = await run_all(v)

    assert summary.done == 16
    assert v.error_codes == []
    await assert_completed(batch)


@pytest.mark.asyncio
async def test_max_tasks_leases_no_more_than_it_computes(server, project_factory):
    project, _ = await make_batch(project_factory, [{"x": i} for i in range(6)], quorum=1)
    v = volunteer(server, project, workers=2, max_tasks=3, until_idle=None)

    (summary,) = await run_all(v)

    assert summary.done == 3
    assert v.sent["result"] == 3
    assert await in_progress_on(v.identity.host) == set()
    assert "max-tasks" in summary.stopped


@pytest.mark.asyncio
async def test_an_unknown_project_stops_the_volunteer_with_the_reason(server, tmp_path):
    v = HeadlessVolunteer(server.url, "no-such-project", benchmark_fpops=1e9, until_idle=5)

    summary = await asyncio.wait_for(v.run(), 15)

    assert summary.stopped == "refused"
    assert "unknown or inactive project (close 4004)" in summary.fatal
    assert v.sent["hello"] == 1


# --- the parts ---------------------------------------------------------------------------------


def test_the_hello_it_sends_is_a_valid_protocol_message():
    caps = capabilities(3, 2.5e7)
    check_client_message({"type": "hello", "v": 1, "project": "p", "capabilities": caps})
    assert caps["cores"] == 3
    assert caps["platform"].startswith("python-")
    assert caps["user_agent"].startswith("socialgrid-volunteer/1 Python 3.")


def test_the_state_file_keeps_the_host_and_its_token(tmp_path):
    path = tmp_path / "sub" / "state.json"
    assert load_identity(path) == Identity()
    save_identity(path, Identity("h", "t"), project="p")
    assert load_identity(path) == Identity("h", "t")
    assert path.stat().st_mode & 0o077 == 0
    path.write_text("not json")
    assert load_identity(path) == Identity()


def test_the_origin_is_the_servers_own():
    assert origin_for("ws://127.0.0.1:8000/ws/worker/") == "http://127.0.0.1:8000"
    assert origin_for("wss://grid.example.org/ws/worker/") == "https://grid.example.org"
    with pytest.raises(ValueError, match="not a ws"):
        origin_for("http://127.0.0.1:8000/")


def test_a_reference_option_names_an_app_and_a_function():
    assert parse_reference("square=tests.support.square") == ("square", "tests.support.square")
    with pytest.raises(ValueError, match=r"APP=dotted\.path"):
        parse_reference("tests.support.square")


def test_compute_reports_the_output_or_the_exception_and_the_cpu_time():
    done = compute("tests.support.square", {"x": 3})
    assert (done.ok, done.output) == (True, {"y": 9})
    assert done.cpu_time >= 0
    failed = compute(f"{__name__}.explode", {"x": 2})
    assert (failed.ok, failed.reason) == (False, "ValueError: cannot square 2")
    missing = compute("tests.support.nothing_here", {})
    assert not missing.ok
    assert "has no attribute" in missing.reason
