"""Scale-out: two ASGI processes and a Celery worker sharing PostgreSQL and Redis, with the
volunteers spread over both processes. A live update raised in one process (a cancelled
batch, granted credit, a paused membership) reaches the volunteers connected to the other.

Everything goes through real sockets: two web processes (the Procfile's command) serve
socialgrid on ports of their own, the volunteers speak the protocol over WebSockets, and the
owner and the volunteer act through HTTP requests. Every server message is checked against
docs/protocol.schema.json.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.test import Client as DjangoClient

import pytest
from websockets.sync.client import ClientConnection, connect

from compute import submission
from compute.api.tokens import issue_token
from compute.models import CreditEntry, Host, Membership, Replica
from compute.states import BatchState, MembershipState, Outcome, ServerState, ValidateState
from socialgrid import procfile
from tests.compute.protocol_client import CAPS, check_client_message, check_server_message
from tests.support import square

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 45.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AsgiProcess:
    """The Procfile's web process in a subprocess on a free port."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.log = log_dir / f"{name}.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.launches = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/worker/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        self.port = free_port()
        self.launches += 1
        with self.log.open("ab") as stream:
            self.proc = subprocess.Popen(
                procfile.argv("web"),
                cwd=ROOT,
                env=procfile.environment(self.env, HOST="127.0.0.1", PORT=self.port),
                stdout=stream,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, deadline: float) -> None:
        """Until /healthz answers 200; a process that lost its port to another is relaunched
        on a new one."""
        while True:
            if self.proc.poll() is not None:
                if "address already in use" in self.tail().lower() and self.launches < 3:
                    self.launch()
                    continue
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode}:\n{self.tail()}"
                )
            if self._healthy():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not answer /healthz in {STARTUP_TIMEOUT:.0f} s:\n"
                    f"{self.tail()}"
                )
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            status, _, _ = call(self, "GET", "/healthz", timeout=2)
        except OSError:
            return False
        return status == 200

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def call(
    server: AsgiProcess,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 15,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One HTTP request to a server process: (status, headers, body); redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture
def asgi_processes(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[AsgiProcess, AsgiProcess]]:
    """Two web processes on the test database and the Redis channel layer, started together."""
    processes = (
        AsgiProcess("asgi-1", worker_env, tmp_path),
        AsgiProcess("asgi-2", worker_env, tmp_path),
    )
    try:
        for p in processes:
            p.launch()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for p in processes:
            p.wait_ready(deadline)
        yield processes
    finally:
        for p in processes:
            p.stop()
        for p in processes:
            if p.tail().strip():
                print(f"--- {p.name} log ---\n{p.tail()}")


class Volunteer:
    """A volunteer host on one socket to one server process."""

    def __init__(self, server: AsgiProcess, cookie: str | None = None) -> None:
        self.server = server
        self.ws: ClientConnection = connect(
            server.ws_url,
            origin=server.origin,
            additional_headers={"Cookie": cookie} if cookie else None,
            proxy=None,
            legacy=True,
            open_timeout=10,
            close_timeout=2,
        )
        self.received: list[dict[str, Any]] = []
        self.host: Host | None = None

    def send(self, message: dict[str, Any]) -> None:
        check_client_message(message)
        self.ws.send(json.dumps(message))

    def expect(
        self,
        kind: str,
        within: float = 15,
        where: Callable[[dict[str, Any]], bool] = lambda m: True,
    ) -> dict[str, Any]:
        """The next server message of this type that passes ``where``; others are kept."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(
                    f"no {kind!r} within {within} s on {self.server.name}; "
                    f"received {self.received[-10:]}"
                )
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            message = json.loads(raw)
            check_server_message(message)
            self.received.append(message)
            if message["type"] == kind and where(message):
                return message

    def hello(self, project: str | None = None) -> dict[str, Any]:
        message = {"type": "hello", "v": 1, "capabilities": dict(CAPS)}
        if project is not None:
            message["project"] = project
        self.send(message)
        welcome = self.expect("welcome", within=10)
        self.host = Host.objects.get(uuid=welcome["host"])
        return welcome

    def lease(self, n: int, within: float = 15) -> list[dict[str, Any]]:
        """Ask until ``n`` tasks are held (an empty assign says when to ask again)."""
        tasks: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while len(tasks) < n:
            assert time.monotonic() < deadline, f"{self.server.name} assigned only {tasks}"
            self.send({"type": "request", "n": n - len(tasks)})
            assign = self.expect("assign", within=10)
            tasks += assign["tasks"]
            if not assign["tasks"]:
                time.sleep(min(assign["retry_after"] or 0.2, 0.5))
        return tasks

    def cancelled(self, replicas: set[int], within: float = 15) -> set[int]:
        """The replicas named by ``cancel`` messages, read until they cover ``replicas``."""
        named: set[int] = set()
        deadline = time.monotonic() + within
        while not replicas <= named:
            left = max(0.1, deadline - time.monotonic())
            named |= set(self.expect("cancel", within=left)["replicas"])
        return named

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def volunteer(
    asgi_processes: tuple[AsgiProcess, AsgiProcess],
) -> Iterator[Callable[..., Volunteer]]:
    """Opens volunteers' sockets; all are closed before the processes stop."""
    opened: list[Volunteer] = []

    def open_one(server: AsgiProcess, cookie: str | None = None) -> Volunteer:
        v = Volunteer(server, cookie)
        opened.append(v)
        return v

    yield open_one
    for v in opened:
        v.close()


# --- cancel --------------------------------------------------------------------------------


def test_a_batch_cancelled_on_one_process_cancels_the_work_held_on_the_other(
    asgi_processes, volunteer, project_factory
):
    first, second = asgi_processes
    project = project_factory(min_quorum=2, target_nresults=2)
    batch = submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(3)], name="to-cancel"
    )
    key = issue_token(project.owner, "scale-out test").key

    a, b = volunteer(first), volunteer(second)
    a.hello(project=project.slug)
    b.hello(project=project.slug)
    held_a = {t["replica"] for t in a.lease(3)}
    held_b = {t["replica"] for t in b.lease(3)}
    # Each host holds one replica of every work unit of the batch.
    for held, v in ((held_a, a), (held_b, b)):
        replicas = Replica.objects.filter(id__in=held)
        assert {r.host_id for r in replicas} == {v.host.id}
        assert sorted(r.workunit_id for r in replicas) == sorted(
            batch.workunits.values_list("id", flat=True)
        )

    status, _, body = call(
        first,
        "POST",
        f"/api/batches/{batch.id}/cancel",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert status == 200, body
    answer = json.loads(body)
    assert (answer["cancelled"], answer["batch"]["state"]) == (3, BatchState.CANCELLED)

    # B is on the other process: the cancel raised by the request to the first reaches it.
    assert b.cancelled(held_b) == held_b
    assert a.cancelled(held_a) == held_a
    states = set(
        Replica.objects.filter(id__in=held_a | held_b).values_list("server_state", "outcome")
    )
    assert states == {(ServerState.OVER, Outcome.DIDNT_NEED)}

    # The cancelled work is gone for B: its result is refused, and nothing else is sent.
    task = Replica.objects.get(id=min(held_b))
    b.send(
        {
            "type": "result",
            "replica": task.id,
            "lease": task.lease_token,
            "output": square(task.workunit.input),
            "cpu_time": 0.5,
        }
    )
    refused = b.expect("error", where=lambda m: m["replica"] == task.id)
    assert refused["code"] == "not_in_progress"


# --- credit --------------------------------------------------------------------------------


def test_credit_granted_by_the_worker_reaches_volunteers_on_both_processes(
    celery_worker, asgi_processes, volunteer, project_factory
):
    first, second = asgi_processes
    project = project_factory(min_quorum=2, target_nresults=2)
    batch = submission.create_batch(project, project.apps.get(), [{"x": 7}], name="quorum")
    workunit = batch.workunits.get()

    a, b = volunteer(first), volunteer(second)
    a.hello(project=project.slug)
    b.hello(project=project.slug)
    (task_a,) = a.lease(1)
    (task_b,) = b.lease(1)
    assert task_a["workunit"] == task_b["workunit"] == workunit.id
    assert task_a["replica"] != task_b["replica"]

    for v, task in ((a, task_a), (b, task_b)):
        v.send(
            {
                "type": "result",
                "replica": task["replica"],
                "lease": task["lease"],
                "output": square(task["input"]),
                "cpu_time": 0.5,
            }
        )
        ack = v.expect("ack", where=lambda m, r=task["replica"]: m["replica"] == r)
        assert ack["of"] == "result"

    # The worker validates; each host hears of its own grant on whichever process it is.
    credit_a = a.expect("credit", within=40)
    credit_b = b.expect("credit", within=15)

    workunit.refresh_from_db()
    assert workunit.canonical_replica_id in {task_a["replica"], task_b["replica"]}
    assert set(Replica.objects.filter(workunit=workunit).values_list("id", "validate_state")) == {
        (task_a["replica"], ValidateState.VALID),
        (task_b["replica"], ValidateState.VALID),
    }
    for v, task, credit in ((a, task_a, credit_a), (b, task_b, credit_b)):
        entry = CreditEntry.objects.get(replica_id=task["replica"])
        assert entry.host_id == v.host.id
        assert entry.amount > 0
        assert credit["amount"] == pytest.approx(entry.amount)
        assert credit["host_total"] == pytest.approx(entry.amount)
    assert not [m for m in a.received + b.received if m["type"] == "error"]


# --- membership ----------------------------------------------------------------------------


def session_cookie(user) -> str:
    """A session of ``user`` in the session store all processes share, as a Cookie value."""
    client = DjangoClient()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_pausing_on_one_process_reaches_the_volunteers_socket_on_the_other(
    asgi_processes, volunteer, project_factory, user_factory
):
    first, second = asgi_processes
    project = project_factory()
    user = user_factory()
    session = session_cookie(user)

    v = volunteer(second, cookie=session)
    welcome = v.hello(project=project.slug)
    assert welcome["user"] == user.get_username()
    assert Membership.objects.get(user=user, project=project).state == MembershipState.ACTIVE

    # The project page on the first process gives the CSRF token the pause form posts back.
    page = f"/projects/{project.slug}/"
    status, headers, _ = call(first, "GET", page, headers={"Cookie": session})
    assert status == 200
    cookies = SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    csrf = cookies[settings.CSRF_COOKIE_NAME].value
    status, headers, _ = call(
        first,
        "POST",
        f"/projects/{project.slug}/pause/",
        headers={
            "Cookie": f"{session}; {settings.CSRF_COOKIE_NAME}={csrf}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=urlencode({"csrfmiddlewaretoken": csrf}).encode(),
    )
    assert (status, headers["Location"]) == (302, page)

    message = v.expect("membership")
    assert message == {
        "type": "membership",
        "project": project.slug,
        "state": MembershipState.PAUSED,
        "no_more_work": False,
    }
    assert Membership.objects.get(user=user, project=project).state == MembershipState.PAUSED
