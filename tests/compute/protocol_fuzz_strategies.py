"""Hostile volunteer-protocol traffic: hypothesis strategies and the driver that sends it.

Shared by the fuzz tests (tests/compute/test_protocol_fuzz.py) and the benchmark
(bench/fuzz_protocol.py). A generated *sequence* is what one connection sends: a few messages
before ``hello``, perhaps a valid ``hello``, then more messages. Messages are templates whose
replica ids and lease tokens are placeholders (:class:`Ref`), filled in at send time with the
connection's own leased replicas, another host's replica or ids that do not exist.

:func:`run_sequence` sends a sequence through the real ASGI router and judges every answer:
it must be a server message valid against docs/protocol.schema.json with a documented error
code (never ``server_error``), or a close with a documented close code; a message the client
schema refuses must be refused; and a refused message must leave the database as it was.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import strategies as st

PROJECT_SLUG = "fuzz"
NONEXISTENT_REPLICA = 10**12
ERROR_CODES = {
    "bad_json",
    "too_large",
    "bad_message",
    "unknown_type",
    "hello_first",
    "already_hello",
    "rate_limited",
    "unknown_replica",
    "not_yours",
    "bad_lease",
    "not_in_progress",
    "lease_expired",
    "output_too_large",
    "bad_cpu_time",
}  # server_error is documented too, but it means an unhandled failure: never acceptable here
CLOSE_CODES = {4000, 4001, 4003, 4004, 4008, 4408}
HELLO_CLOSE_CODES = {4000, 4001, 4003, 4004}
# Server messages nobody asked for; they may arrive between a message and its answer.
UNSOLICITED = {"cancel", "credit", "membership"}
# What each client message type may be answered with, besides an error or a close.
ANSWERS = {
    "hello": {"welcome"},
    "request": {"assign"},
    "result": {"ack"},
    "error": {"ack"},
    "progress": {"ack"},
    "heartbeat": {"heartbeat"},
}
# Refusals that say the message was malformed: never the answer to a schema-valid message.
SHAPE_CODES = {"bad_json", "unknown_type"}


# --- Strategies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A placeholder filled in at send time.

    ``what`` is ``replica`` or ``lease``; ``whose`` is ``own`` (one of this connection's
    leased replicas, or a nonexistent id before it has any), ``victim`` (a replica leased to
    another host) or ``done`` (a replica this connection already reported)."""

    what: str
    whose: str


def _no_surrogates(min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=("Cs",)), min_size=min_size, max_size=max_size)


NASTY_STRINGS = st.sampled_from(
    [
        "",
        "NaN",
        "Infinity",
        "-Infinity",
        "null",
        "1e999",
        "\u0000",
        "a\u0000b",
        "\ud800",
        "\udfff\ud800",
        "\U0001f4a9" * 3,
        "\u202e\u200b\ufeff",
        "é" * 40,
        "'; DROP TABLE compute_replica; --",
        "<script>alert(1)</script>",
        "%s%s%n",
        "\n",
        "\\",
        '"',
    ]
)
HUGE_INTS = st.sampled_from([2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**100])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),  # serialised as NaN and Infinity
    _no_surrogates(),
    st.text(max_size=8),
    NASTY_STRINGS,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(_no_surrogates(max_size=8), NASTY_STRINGS), children, max_size=4),
    ),
    max_leaves=16,
)

# Frames that are not JSON, or are JSON only to a lenient parser, or stress the parser.
RAW_FRAMES = st.one_of(
    _no_surrogates(max_size=60),
    st.sampled_from(
        [
            "",
            " ",
            "{",
            "}",
            "null",
            "true",
            "0",
            "-0",
            '"hello"',
            "[]",
            "{}",
            "NaN",
            "Infinity",
            "[1e999]",
            '{"type": "heartbeat"',
            '{"type": "heartbeat"}}',
            '{"type": "heartbeat", "type": "request", "n": 1}',
            '{"type": "request", "n": 1e999}',
            '{"type": "request", "n": NaN}',
            '{"type": "request", "n": 1.0}',
            '{"type": "request", "n": 1E0}',
            '{"type": "request", "n": 2}garbage',
            '{"type": "hello\\u0000"}',
            "{\"type\": 'heartbeat'}",
            '{"type": "heartbeat",}',
            "\ufeff{}",
            '{"type":"request","n":' + "9" * 5000 + "}",
            '{"type":"request","n":1' + "0" * 400 + "}",
        ]
    ),
    st.integers(1, 3000).map(lambda d: "[" * d + "]" * d),
    st.integers(1, 3000).map(lambda d: '{"type":"result","output":' + "[" * d + "]" * d + "}"),
    st.integers(1, 3000).map(lambda d: '{"a":' * d + "1" + "}" * d),
    st.integers(1, 3000).map(lambda d: "[" * d),
)
BINARY_FRAMES = st.one_of(
    st.binary(max_size=40),
    st.just(b'{"type": "heartbeat"}'),
    st.just(b'{"type": "hello", "v": 1, "capabilities": {"cores": 1}}'),
)

HEX = "0123456789abcdef"
LEASE_LIKE = st.one_of(
    st.text(HEX, min_size=32, max_size=32),
    st.just("0" * 32),
    st.just("A" * 32),
    st.just("a" * 32 + "\n"),
    st.text(HEX, min_size=31, max_size=33),
    st.just(""),
)


def _mixed(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly good values, so that messages get past the first check often enough."""
    return st.one_of(good, good, bad)


WRONG_TYPES = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.just([]), st.just({}))
REPLICA_VALUES = _mixed(
    st.sampled_from([Ref("replica", "own"), Ref("replica", "victim"), Ref("replica", "done")]),
    st.one_of(
        st.just(NONEXISTENT_REPLICA),
        st.sampled_from([0, -1, 2**63, 2**70, 1.0, 1.5, "1"]),
        st.integers(),
        WRONG_TYPES,
    ),
)
LEASE_VALUES = _mixed(
    st.sampled_from([Ref("lease", "own"), Ref("lease", "victim"), Ref("lease", "done")]),
    st.one_of(LEASE_LIKE, st.integers(), WRONG_TYPES),
)
FRACTIONS = _mixed(
    st.one_of(st.floats(0, 1), st.sampled_from([5e-324, 1e-300, 1e-9])),
    st.one_of(
        st.sampled_from([1e-9, -0.0, -1e-300, -5e-324, -0.1, 1.0000001, 2, "0.5"]),
        st.floats(),
        WRONG_TYPES,
    ),
)
CPU_TIMES = _mixed(
    st.floats(0, 1e6),
    st.one_of(
        st.sampled_from([-1, -1e-300, -0.0, 31536000, 31536001, 1e308, "1", 10**400]),
        st.floats(),
        WRONG_TYPES,
    ),
)
OUTPUTS = st.one_of(
    JSON_VALUES,
    st.integers(900, 1300).map(lambda n: "x" * n),  # around MAX_OUTPUT_BYTES in the tests
    st.integers(900, 1300).map(lambda n: ["é"] * (n // 6)),
)
REASONS = _mixed(
    _no_surrogates(max_size=40),
    st.one_of(
        NASTY_STRINGS,
        st.integers(495, 520).map(lambda n: "r" * n),
        st.text(max_size=10),
        st.integers(),
        WRONG_TYPES,
    ),
)
NS = _mixed(
    st.integers(1, 3),
    st.one_of(
        st.sampled_from([0, -1, 65, 10**9, 2**64, 1.0, 1.5, "3", True]),
        st.integers(),
        WRONG_TYPES,
    ),
)
CAPABILITIES = st.fixed_dictionaries(
    {"cores": _mixed(st.integers(1, 256), st.one_of(st.integers(), st.just(4.0), WRONG_TYPES))},
    optional={
        "memory_mb": _mixed(
            st.integers(0, 16 * 1024 * 1024), st.one_of(st.integers(), HUGE_INTS, WRONG_TYPES)
        ),
        "user_agent": _mixed(
            _no_surrogates(max_size=40),
            st.one_of(NASTY_STRINGS, st.just("u" * 301), st.text(max_size=10), WRONG_TYPES),
        ),
        "platform": _mixed(
            st.from_regex(r"\A[a-z0-9_.-]{1,40}\Z"),
            st.one_of(NASTY_STRINGS, st.just("x86\n"), st.just("p" * 41), WRONG_TYPES),
        ),
        "wasm": _mixed(st.booleans(), WRONG_TYPES),
        "simd": _mixed(st.booleans(), WRONG_TYPES),
        "threads": _mixed(st.booleans(), WRONG_TYPES),
        "benchmark_fpops": _mixed(
            st.floats(1, 1e13),
            st.one_of(st.sampled_from([0, -1, 1e14, 5e-324, "1e9"]), st.floats(), WRONG_TYPES),
        ),
        "gpu": JSON_VALUES,
    },
)
HOSTS = _mixed(
    st.one_of(st.none(), st.uuids().map(str)),
    st.one_of(
        st.just(Ref("host", "victim")),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: str(u) + "\n"),
        st.uuids().map(lambda u: u.hex),
        NASTY_STRINGS,
        WRONG_TYPES,
    ),
)
HOST_TOKENS = st.one_of(
    st.none(),
    _no_surrogates(max_size=60),
    st.just("t" * 201),
    NASTY_STRINGS,
    WRONG_TYPES,
)
PROJECTS = _mixed(
    st.just(PROJECT_SLUG),
    st.one_of(
        st.none(),
        st.just(PROJECT_SLUG + "\n"),
        st.just("no-such-project"),
        st.just("p" * 51),
        NASTY_STRINGS,
        WRONG_TYPES,
    ),
)
VERSIONS = _mixed(
    st.just(1),
    st.one_of(st.sampled_from([0, 2, -1, 2**31, 2**31 + 1, 1.0, "1", True]), WRONG_TYPES),
)
UNKNOWN_TYPES = st.one_of(
    st.sampled_from(["", "HELLO", "hello ", "teleport", "welcome", "ack", "assign", "\u0000"]),
    st.text(max_size=60),
)


FIELDS = {
    "hello": {
        "v": VERSIONS,
        "capabilities": st.one_of(CAPABILITIES, CAPABILITIES, WRONG_TYPES),
        "host": HOSTS,
        "host_token": HOST_TOKENS,
        "project": PROJECTS,
    },
    "request": {"n": NS},
    "progress": {"replica": REPLICA_VALUES, "lease": LEASE_VALUES, "fraction": FRACTIONS},
    "result": {
        "replica": REPLICA_VALUES,
        "lease": LEASE_VALUES,
        "output": OUTPUTS,
        "cpu_time": CPU_TIMES,
    },
    "error": {"replica": REPLICA_VALUES, "lease": LEASE_VALUES, "reason": REASONS},
    "heartbeat": {},
}
OPTIONAL = {"hello": {"host", "host_token", "project"}}
# Well-formed fields only, so that half the lease messages get past parsing to the lease
# checks: someone else's replica, a mismatched or wrong lease, a reported or unknown replica.
WELL_FORMED_REPLICAS = st.one_of(
    st.sampled_from([Ref("replica", "own"), Ref("replica", "victim"), Ref("replica", "done")]),
    st.just(NONEXISTENT_REPLICA),
    st.integers(1, 2**63 - 1),
)
WELL_FORMED_LEASES = st.one_of(
    st.sampled_from([Ref("lease", "own"), Ref("lease", "own"), Ref("lease", "victim")]),
    st.sampled_from([Ref("lease", "done"), "0" * 32]),
    st.text(HEX, min_size=32, max_size=32),
)
WELL_FORMED = {
    "progress": {
        "replica": WELL_FORMED_REPLICAS,
        "lease": WELL_FORMED_LEASES,
        "fraction": st.floats(0, 1),
    },
    "result": {
        "replica": WELL_FORMED_REPLICAS,
        "lease": WELL_FORMED_LEASES,
        "output": OUTPUTS,
        "cpu_time": st.floats(0, 31536000),
    },
    "error": {
        "replica": WELL_FORMED_REPLICAS,
        "lease": WELL_FORMED_LEASES,
        "reason": _no_surrogates(max_size=40),
    },
}


@st.composite
def typed_messages(draw, kind: str | None = None) -> dict[str, Any]:
    """An object with a ``type`` of the protocol (or an unknown one) whose fields may be of
    the wrong type, out of range, missing or extra."""
    kind = kind or draw(st.sampled_from([*FIELDS, "unknown"]))
    if kind == "unknown":
        message = {"type": draw(UNKNOWN_TYPES)}
        fields = draw(st.dictionaries(_no_surrogates(max_size=8), JSON_VALUES, max_size=3))
        return {**fields, **message}
    message: dict[str, Any] = {"type": kind}
    if kind in WELL_FORMED and draw(st.booleans()):
        message.update({name: draw(values) for name, values in WELL_FORMED[kind].items()})
        if draw(st.integers(0, 3)):  # mostly a replica with its own lease
            whose = draw(st.sampled_from(["own", "own", "own", "done", "victim"]))
            message.update(replica=Ref("replica", whose), lease=Ref("lease", whose))
        return message
    optional = OPTIONAL.get(kind, set())
    for name, values in FIELDS[kind].items():
        if name in optional and not draw(st.booleans()):
            continue
        message[name] = draw(values)
    if draw(st.integers(0, 5)) == 0 and len(message) > 1:
        del message[draw(st.sampled_from(sorted(set(message) - {"type"})))]
    if draw(st.integers(0, 7)) == 0:
        message[draw(st.sampled_from(["extra", "Type", "n", "v", "replica", ""]))] = draw(
            JSON_VALUES
        )
    if draw(st.integers(0, 15)) == 0:
        message["type"] = draw(st.sampled_from([None, 1, [], {}, True, kind.upper()]))
    return message


@dataclass(frozen=True)
class Op:
    """One frame: ``text`` (sent as is), ``binary``, ``json`` (a template, serialised at send
    time, ASCII-escaped or not) or ``oversized`` (a JSON message padded past the limit)."""

    kind: str
    payload: Any
    ascii_only: bool = True


def message_ops() -> st.SearchStrategy[Op]:
    """Objects with a ``type`` (see :func:`typed_messages`)."""
    return st.builds(Op, st.just("json"), typed_messages(), st.booleans())


def value_ops() -> st.SearchStrategy[Op]:
    """Arbitrary JSON values: nested, huge numbers, NaN-like and odd unicode strings."""
    return st.builds(Op, st.just("json"), JSON_VALUES, st.booleans())


def frame_ops() -> st.SearchStrategy[Op]:
    """Frames that are not JSON, binary frames and frames over the size limit."""
    return st.one_of(
        st.builds(Op, st.just("text"), RAW_FRAMES),
        st.builds(Op, st.just("binary"), BINARY_FRAMES),
        st.builds(Op, st.just("oversized"), st.sampled_from(["x", "é", "\U0001f4a9"])),
    )


def any_ops() -> st.SearchStrategy[Op]:
    return st.one_of(message_ops(), message_ops(), message_ops(), value_ops(), frame_ops())


def valid_hello() -> dict[str, Any]:
    return {
        "type": "hello",
        "v": 1,
        "project": PROJECT_SLUG,
        "capabilities": {"cores": 2, "platform": "fuzz-x86_64", "benchmark_fpops": 2e9},
    }


VALID_REQUEST = st.integers(1, 2).map(lambda n: Op("json", {"type": "request", "n": n}))


@dataclass(frozen=True)
class Sequence:
    before: list[Op]
    hello: bool
    after: list[Op]

    def ops(self) -> list[Op]:
        return [*self.before, *([Op("json", valid_hello())] if self.hello else []), *self.after]


def sequences(
    ops: st.SearchStrategy[Op] | None = None,
    max_before: int = 3,
    max_after: int = 12,
    min_after: int = 0,
) -> st.SearchStrategy[Sequence]:
    """What one connection sends; usually a valid hello in the middle, and valid requests
    among the rest so that replicas of its own are leased to it."""
    ops = any_ops() if ops is None else ops
    return st.builds(
        Sequence,
        st.lists(ops, max_size=max_before),
        st.integers(0, 5).map(bool),
        st.lists(st.one_of(ops, ops, ops, VALID_REQUEST), min_size=min_after, max_size=max_after),
    )


# --- The world the traffic runs against ---------------------------------------------------------


@dataclass
class World:
    project_id: int
    victim_host_uuid: str
    victim_replica: int
    victim_lease: str


def setup_world(owner=None) -> World:
    """A public project ``fuzz`` with the square app and a batch of work, and a victim host
    (anonymous) holding one leased replica. Needs the database."""
    from django.contrib.auth import get_user_model

    from compute import hosts, scheduler
    from compute.catalog import catalog
    from compute.models import App, AppVersion, Project
    from compute.protocol import Capabilities

    if owner is None:
        owner = get_user_model().objects.create_user(username="fuzz-owner", password="pw")
    project = Project.objects.create(
        slug=PROJECT_SLUG,
        name="Fuzz",
        owner=owner,
        min_quorum=2,
        target_nresults=2,
        delay_bound=600,
    )
    app = App.objects.create(
        project=project, name="square", title="Square", reference_path="tests.support.square"
    )
    AppVersion.objects.create(
        app=app, version=1, kernel="export function run(i) { return {y: i.x * i.x}; }"
    )
    catalog.invalidate()
    top_up_work(project.id)
    session = hosts.open_session(
        None, Capabilities(cores=1), host_uuid=None, token=None, project_slug=PROJECT_SLUG
    )
    (task,) = scheduler.lease_replicas(session.host, 1, project_ids=session.project_ids)
    return World(project.id, str(session.host.uuid), task.replica_id, task.lease_token)


def top_up_work(project_id: int, minimum: int = 12) -> None:
    """Keep enough unsent replicas for the next connection to lease some."""
    from compute import submission
    from compute.models import Project, Replica
    from compute.states import ServerState

    project = Project.objects.get(id=project_id)
    unsent = Replica.objects.filter(
        workunit__batch__project=project, server_state=ServerState.UNSENT
    ).count()
    if unsent < minimum:
        submission.create_batch(
            project, project.apps.get(), [{"x": i} for i in range(minimum)], name="fuzz"
        )


def fingerprint(replica_ids: list[int]) -> tuple:
    """What a refused message must not change: the named replicas' state, owner, lease,
    deadline and output, how many replicas are in each state, the credit granted, the hosts
    and their error counts."""
    from django.db.models import Count, Sum

    from compute.models import CreditEntry, Host, Replica

    replicas = tuple(
        Replica.objects.filter(id__in=replica_ids)
        .order_by("id")
        .values_list(
            "id", "server_state", "outcome", "host_id", "lease_token", "deadline", "output"
        )
    )
    states = tuple(
        Replica.objects.values_list("server_state", "outcome")
        .annotate(n=Count("id"))
        .order_by("server_state", "outcome")
    )
    credit = CreditEntry.objects.aggregate(n=Count("id"), total=Sum("amount"))
    hosts = Host.objects.aggregate(
        n=Count("id"), errors=Sum("n_error"), users=Count("user"), credit=Sum("total_credit")
    )
    return replicas, states, tuple(credit.values()), tuple(hosts.values())


def changes(before: tuple, after: tuple) -> str:
    """What differs between two fingerprints, briefly."""
    parts = []
    names = ("replicas", "states", "credit", "hosts")
    for name, was, now in zip(names, before, after, strict=True):
        if was != now:
            if name == "replicas":
                was, now = set(was) - set(now), set(now) - set(was)
            parts.append(f"{name} {was} became {now}")
    return "; ".join(parts)


# --- Judging answers ----------------------------------------------------------------------------


class Oracle:
    """The documented schema, with validators built once."""

    def __init__(self) -> None:
        import jsonschema

        from tests.compute.protocol_client import schema

        full = schema()
        checker = jsonschema.FormatChecker()

        def validator(part: dict) -> jsonschema.Draft202012Validator:
            return jsonschema.Draft202012Validator(
                {"$defs": full["$defs"], **part}, format_checker=checker
            )

        self.server = {kind: validator(part) for kind, part in full["server"].items()}
        self.client = {kind: validator(part) for kind, part in full["client"].items()}

    def client_valid(self, frame: str) -> tuple[bool, dict | None]:
        """Whether a text frame is strict JSON (no NaN or infinities) and a client message
        valid against the schema; and the object when it is one."""
        try:
            data = json.loads(frame, parse_constant=_refuse, parse_float=_finite)
        except (ValueError, RecursionError):
            return False, None
        if not isinstance(data, dict):
            return False, None
        validator = self.client.get(data.get("type")) if isinstance(data.get("type"), str) else None
        if validator is None:
            return False, data
        try:
            return validator.is_valid(data), data
        except RecursionError:
            return False, data

    def server_problem(self, message: Any) -> str | None:
        if not isinstance(message, dict) or message.get("type") not in self.server:
            return f"undocumented server message {str(message)[:200]}"
        errors = list(self.server[message["type"]].iter_errors(message))
        if errors:
            return f"server message not valid against the schema: {errors[0].message[:200]}"
        return None


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


@dataclass
class Tally:
    sequences: int = 0
    sent: int = 0
    replies: Counter = field(default_factory=Counter)  # (type, code or "")
    closes: Counter = field(default_factory=Counter)
    unsolicited: Counter = field(default_factory=Counter)
    exceptions: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.failures.append(problem)


@dataclass
class _Connection:
    own: list[tuple[int, str]] = field(default_factory=list)
    done: list[tuple[int, str]] = field(default_factory=list)
    welcomed: bool = False


def _resolve(value: Any, world: World, conn: _Connection) -> Any:
    if isinstance(value, Ref):
        if value.what == "host":
            return world.victim_host_uuid
        if value.whose == "victim":
            pair = (world.victim_replica, world.victim_lease)
        else:
            pool = conn.own if value.whose == "own" else conn.done
            pair = pool[0] if pool else (NONEXISTENT_REPLICA, "f" * 32)
        return pair[0] if value.what == "replica" else pair[1]
    if isinstance(value, dict):
        return {k: _resolve(v, world, conn) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, world, conn) for v in value]
    return value


def _frame(op: Op, world: World, conn: _Connection, max_bytes: int) -> tuple[str | None, bytes]:
    if op.kind == "binary":
        return None, op.payload
    if op.kind == "text":
        return op.payload, b""
    if op.kind == "oversized":
        unit = len(op.payload.encode())
        return json.dumps(
            {"type": "heartbeat", "pad": op.payload * (max_bytes // unit + 1)}, ensure_ascii=False
        ), b""
    value = _resolve(op.payload, world, conn)
    text = json.dumps(value, ensure_ascii=True)
    if not op.ascii_only:
        # Lone surrogates cannot travel in a UTF-8 WebSocket frame; keep them escaped.
        loose = json.dumps(value, ensure_ascii=False)
        if not any("\ud800" <= c <= "\udfff" for c in loose):
            text = loose
    return text, b""


async def run_sequence(
    application,
    sequence: Sequence,
    world: World,
    oracle: Oracle,
    tally: Tally,
    *,
    max_bytes: int,
    check_db: int = 1,
    wait: float = 10.0,
) -> None:
    """Send one connection's messages and judge every answer into ``tally``; the database
    is checked around every ``check_db``-th message (never when 0)."""
    tally.sequences += 1
    ws = WebsocketCommunicator(
        application, "/ws/worker/", headers=[(b"origin", b"http://testserver")]
    )
    connected, _ = await ws.connect()
    if not connected:
        tally.fail("the connection was refused")
        return
    conn = _Connection()
    closed = False
    try:
        for op in sequence.ops():
            closed = await _exchange(ws, op, world, oracle, tally, conn, max_bytes, check_db, wait)
            if closed:
                break
    except Exception as e:  # the application raised: the communicator re-raises it here
        tally.exceptions += 1
        tally.fail(f"unhandled exception: {type(e).__name__}: {str(e)[:300]}")
        closed = True
    finally:
        await ws.disconnect()


async def _exchange(
    ws: WebsocketCommunicator,
    op: Op,
    world: World,
    oracle: Oracle,
    tally: Tally,
    conn: _Connection,
    max_bytes: int,
    check_db: int,
    wait: float,
) -> bool:
    """Send one frame, read its answer; True when the server closed the connection."""
    text, data = _frame(op, world, conn, max_bytes)
    if text is not None and len(text.encode()) > max_bytes:
        schema_ok, parsed = False, None
    elif text is not None:
        schema_ok, parsed = oracle.client_valid(text)
    else:
        schema_ok, parsed = False, None
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    kind = kind if isinstance(kind, str) else None
    refs_victim = isinstance(parsed, dict) and parsed.get("replica") == world.victim_replica
    watched = [world.victim_replica, *(r for r, _ in conn.own), *(r for r, _ in conn.done)]
    if isinstance(parsed, dict) and type(parsed.get("replica")) is int:
        watched.append(parsed["replica"])
    watched = [r for r in watched if 0 < r < 2**63]
    check = bool(check_db) and tally.sent % check_db == 0
    if check:
        # What earlier answered messages queued for after their commit (a transition, a
        # validation, run in the writer's thread where Celery runs in-process) is done
        # before the picture is taken: only this message is judged.
        from compute.dispatch import writer

        await writer.get().settled()
    before = await sync_to_async(fingerprint)(watched) if check else None
    # As a server hands frames over; send_to() refuses empty ones, which are legal frames.
    if text is not None:
        await ws.send_input({"type": "websocket.receive", "text": text})
    else:
        await ws.send_input({"type": "websocket.receive", "bytes": data})
    tally.sent += 1
    where = f"after {(text if text is not None else repr(data))[:300]!r}"

    refused = True
    closed = False
    while True:
        output = await ws.receive_output(wait)
        if output["type"] == "websocket.close":
            code = output.get("code")
            tally.closes[code] += 1
            closed = True
            if code not in CLOSE_CODES:
                tally.fail(f"undocumented close code {code} {where}")
            elif code in HELLO_CLOSE_CODES and kind != "hello":
                tally.fail(f"close {code} for a message that is not a hello {where}")
            break
        try:
            message = json.loads(output["text"])
        except (KeyError, TypeError, ValueError):
            tally.fail(f"a frame that is not JSON text: {str(output)[:200]} {where}")
            break
        problem = oracle.server_problem(message)
        if problem:
            tally.fail(f"{problem} {where}")
            break
        answer = message["type"]
        if answer in UNSOLICITED:
            tally.unsolicited[answer] += 1
            continue
        if answer == "notice":
            tally.replies[("notice", message["level"])] += 1
            if kind != "hello":
                tally.fail(f"a notice in answer to a message that is not a hello {where}")
            continue  # a refused hello: the close follows
        code = message.get("code", "")
        tally.replies[(answer, code)] += 1
        if answer == "error":
            if code not in ERROR_CODES:
                tally.fail(f"error code {code!r} {where}: {message['message'][:200]}")
            elif schema_ok and code in SHAPE_CODES:
                tally.fail(f"a schema-valid message refused as {code} {where}")
            elif (
                schema_ok
                and not conn.welcomed
                and kind != "hello"
                # The parser checks ranges the schema does not (an integer written 1.0).
                and code not in {"hello_first", "bad_message", "too_large", "rate_limited"}
            ):
                tally.fail(f"{code} instead of hello_first before hello {where}")
            break
        refused = False
        if answer not in ANSWERS.get(kind or "", set()):
            tally.fail(f"{answer} in answer to {kind!r} {where}")
        elif not schema_ok:
            tally.fail(f"{answer}: a message the schema refuses was accepted {where}")
        elif refs_victim:
            tally.fail(f"another host's replica was accepted {where}")
        elif answer == "welcome":
            if conn.welcomed:
                tally.fail(f"a second welcome {where}")
            conn.welcomed = True
            conn.own.extend((t["replica"], t["lease"]) for t in message["resume"])
        elif answer == "assign":
            if len(message["tasks"]) > parsed["n"]:
                tally.fail(f"{len(message['tasks'])} tasks for n={parsed['n']} {where}")
            conn.own.extend((t["replica"], t["lease"]) for t in message["tasks"])
        elif answer == "ack":
            if message["of"] != kind or message["replica"] != parsed["replica"]:
                tally.fail(f"ack {message} does not match {where}")
            if kind in ("result", "error"):
                pair = (parsed["replica"], parsed["lease"])
                if pair in conn.own:
                    conn.own.remove(pair)
                conn.done.append(pair)
        break

    if check and refused:
        after = await sync_to_async(fingerprint)(watched)
        if after != before:
            tally.fail(f"a refused message changed the database {where}: {changes(before, after)}")
    return closed
