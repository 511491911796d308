"""The volunteer protocol's messages: parsing what hosts send, shaping what the server sends.

Pure functions; the consumer calls them. The schema of every message is in
``docs/protocol.schema.json`` and the prose in ``docs/protocol.md``. Parsing is written out
by hand (it runs for every message) and tested against that schema.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from compute import jsonvalues
from compute.numbers import finite_float
from compute.scheduler import Assignment

VERSION = 1

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LEASE_RE = re.compile(r"^[0-9a-f]{32}$")
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")
PLATFORM_RE = re.compile(r"^[a-z0-9_.-]{1,40}$")
MAX_REPLICA = 2**63 - 1
MAX_REQUEST = 64  # tasks one request (or a result's request) may ask for


class Code(enum.StrEnum):
    BAD_JSON = "bad_json"
    TOO_LARGE = "too_large"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    HELLO_FIRST = "hello_first"
    ALREADY_HELLO = "already_hello"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_REPLICA = "unknown_replica"
    NOT_YOURS = "not_yours"
    BAD_LEASE = "bad_lease"
    NOT_IN_PROGRESS = "not_in_progress"
    LEASE_EXPIRED = "lease_expired"
    OUTPUT_TOO_LARGE = "output_too_large"
    BAD_CPU_TIME = "bad_cpu_time"
    SERVER_ERROR = "server_error"


class Close(enum.IntEnum):
    UNSUPPORTED_VERSION = 4000
    UNAUTHENTICATED = 4001
    FORBIDDEN = 4003
    UNKNOWN_PROJECT = 4004
    TOO_MANY_VIOLATIONS = 4008
    IDLE = 4408


class ProtocolError(Exception):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Capabilities:
    cores: int
    memory_mb: int = 0
    user_agent: str = ""
    platform: str = "unknown"
    wasm: bool = False
    simd: bool = False
    threads: bool = False
    benchmark_fpops: float = 1e9


@dataclass(frozen=True)
class Hello:
    v: int
    capabilities: Capabilities
    host: str | None = None
    host_token: str | None = None
    project: str | None = None


@dataclass(frozen=True)
class Request:
    n: int


@dataclass(frozen=True)
class Progress:
    replica: int
    lease: str
    fraction: float


@dataclass(frozen=True)
class Result:
    replica: int
    lease: str
    output: Any
    cpu_time: float
    # Ask for up to this many more tasks in the same message (answered in the ack).
    request: int | None = None


@dataclass(frozen=True)
class Failure:
    replica: int
    lease: str
    reason: str


@dataclass(frozen=True)
class Heartbeat:
    pass


Message = Hello | Request | Progress | Result | Failure | Heartbeat


def _bad(message: str) -> ProtocolError:
    return ProtocolError(Code.BAD_MESSAGE, message)


def _fields(data: dict, required: set[str], optional: set[str] = frozenset()) -> None:
    missing = required - data.keys()
    if missing:
        raise _bad(f"missing field: {sorted(missing)[0]}")
    extra = data.keys() - required - optional
    if extra:
        raise _bad(f"unknown field: {sorted(extra)[0]}")


def _int(data: dict, key: str, lo: int, hi: int) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(f"{key} must be an integer from {lo} to {hi}")
    return value


def _number(
    data: dict,
    key: str,
    lo: float,
    hi: float,
    *,
    open_low: bool = False,
    code: Code = Code.BAD_MESSAGE,
) -> float:
    value = finite_float(data[key])
    if value is None:
        raise ProtocolError(code, f"{key} must be a number")
    if value < lo or value > hi or (open_low and value == lo):
        raise ProtocolError(code, f"{key} must be between {lo:g} and {hi:g}")
    return value


MAX_CPU_SECONDS = 31536000.0  # a year


def _str(
    data: dict,
    key: str,
    max_length: int,
    pattern: re.Pattern | None = None,
    *,
    nullable: bool = False,
):
    value = data.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise _bad(f"{key} must be a string of at most {max_length} characters")
    if jsonvalues.text_problem(value):
        raise _bad(f"{key} must be text without NUL characters or lone surrogates")
    if pattern is not None and not pattern.fullmatch(value):
        raise _bad(f"{key} is not well-formed")
    return value


def _no_constant(name: str) -> None:
    raise ProtocolError(Code.BAD_JSON, f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _bad("numbers must be finite")
    return value


def _bool(data: dict, key: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise _bad(f"{key} must be true or false")
    return value


def _capabilities(data: Any) -> Capabilities:
    if not isinstance(data, dict):
        raise _bad("capabilities must be an object")
    _fields(
        data,
        {"cores"},
        {"memory_mb", "user_agent", "platform", "wasm", "simd", "threads", "benchmark_fpops"},
    )
    values: dict[str, Any] = {"cores": _int(data, "cores", 1, 256)}
    if "memory_mb" in data:
        values["memory_mb"] = _int(data, "memory_mb", 0, 16 * 1024 * 1024)
    if "user_agent" in data:
        values["user_agent"] = _str(data, "user_agent", 300)
    if "platform" in data:
        values["platform"] = _str(data, "platform", 40, PLATFORM_RE)
    for flag in ("wasm", "simd", "threads"):
        if flag in data:
            values[flag] = _bool(data, flag)
    if "benchmark_fpops" in data:
        values["benchmark_fpops"] = _number(data, "benchmark_fpops", 0, 1e13, open_low=True)
    return Capabilities(**values)


def _lease_ref(data: dict) -> tuple[int, str]:
    return _int(data, "replica", 1, MAX_REPLICA), _str(data, "lease", 32, LEASE_RE)


def parse(text: str) -> Message:
    """A client message from a text frame, or ProtocolError with the code to answer."""
    try:
        # NaN and infinities would pass into stored outputs, where the database refuses them.
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(Code.BAD_JSON, "the message is not JSON") from e
    if not isinstance(data, dict):
        raise ProtocolError(Code.BAD_JSON, "the message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise _bad("missing field: type")
    if kind == "hello":
        _fields(data, {"type", "v", "capabilities"}, {"host", "host_token", "project"})
        return Hello(
            v=_int(data, "v", 0, 2**31),
            capabilities=_capabilities(data["capabilities"]),
            host=_str(data, "host", 36, UUID_RE, nullable=True),
            host_token=_str(data, "host_token", 200, nullable=True),
            project=_str(data, "project", 50, SLUG_RE, nullable=True),
        )
    if kind == "request":
        _fields(data, {"type", "n"})
        return Request(n=_int(data, "n", 1, MAX_REQUEST))
    if kind == "progress":
        _fields(data, {"type", "replica", "lease", "fraction"})
        return Progress(*_lease_ref(data), fraction=_number(data, "fraction", 0.0, 1.0))
    if kind == "result":
        _fields(data, {"type", "replica", "lease", "output", "cpu_time"}, {"request"})
        replica, lease = _lease_ref(data)
        if jsonvalues.problem(data["output"]):
            raise _bad("output must be text without NUL characters or lone surrogates")
        return Result(
            replica,
            lease,
            data["output"],
            # NaN and the infinities are not JSON: they never get here (bad_json).
            _number(data, "cpu_time", 0.0, MAX_CPU_SECONDS, code=Code.BAD_CPU_TIME),
            _int(data, "request", 1, MAX_REQUEST) if "request" in data else None,
        )
    if kind == "error":
        _fields(data, {"type", "replica", "lease", "reason"})
        return Failure(*_lease_ref(data), reason=_str(data, "reason", 500))
    if kind == "heartbeat":
        _fields(data, {"type"})
        return Heartbeat()
    raise ProtocolError(Code.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")


# --- Server messages -------------------------------------------------------------------------


def encode(message: dict[str, Any]) -> str:
    """A server message as a text frame. Work unit inputs are embedded as stored (JSON text,
    see :func:`task`), never parsed and written again."""
    return orjson.dumps(message).decode()


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def task(a: Assignment) -> dict[str, Any]:
    return {
        "replica": a.replica_id,
        "workunit": a.workunit_id,
        "name": a.name,
        "project": a.project_slug,
        "app": {
            "name": a.app_name,
            "version": a.version,
            "kernel_url": a.kernel_url,
            "kernel_sha256": a.kernel_sha256,
            "wasm_url": a.wasm_url or None,
            "wasm_sha256": a.wasm_sha256 or None,
        },
        "input": orjson.Fragment(a.input_json),
        "lease": a.lease_token,
        "deadline": _time(a.deadline),
    }


def welcome(
    *,
    host: str,
    host_token: str | None,
    user: str | None,
    limits: dict[str, float],
    resume: list[Assignment],
    host_total: float,
    user_total: float | None,
) -> dict[str, Any]:
    return {
        "type": "welcome",
        "v": VERSION,
        "host": host,
        "host_token": host_token,
        "user": user,
        "limits": limits,
        "resume": [task(a) for a in resume],
        "credit": {"host_total": host_total, "user_total": user_total},
    }


def assign(tasks: list[Assignment], retry_after: float | None) -> dict[str, Any]:
    return {
        "type": "assign",
        "tasks": [task(a) for a in tasks],
        "retry_after": None if tasks else retry_after,
    }


def ack(
    of: str,
    replica: int,
    deadline: datetime | None = None,
    assigned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An accepted message; a result that asked for more work carries its assignment
    (``tasks`` and ``retry_after``, as in ``assign``)."""
    message = {"type": "ack", "of": of, "replica": replica, "deadline": _time(deadline)}
    if assigned is not None:
        message["tasks"] = assigned["tasks"]
        message["retry_after"] = assigned["retry_after"]
    return message


def error(code: Code, message: str, replica: int | None = None) -> dict[str, Any]:
    return {"type": "error", "code": str(code), "message": message, "replica": replica}


def cancel(replicas: list[int]) -> dict[str, Any]:
    return {"type": "cancel", "replicas": replicas}


def credit(amount: float, host_total: float, user_total: float | None) -> dict[str, Any]:
    return {"type": "credit", "amount": amount, "host_total": host_total, "user_total": user_total}


def membership(project: str, state: str, no_more_work: bool) -> dict[str, Any]:
    return {"type": "membership", "project": project, "state": state, "no_more_work": no_more_work}


def notice(text: str, level: str = "info") -> dict[str, Any]:
    return {"type": "notice", "level": level, "text": text}


def heartbeat(now: datetime) -> dict[str, Any]:
    return {"type": "heartbeat", "time": _time(now)}


# A heartbeat as every client sends it: recognised without parsing (see heartbeat_frame).
HEARTBEAT = '{"type":"heartbeat"}'
_heartbeat_frames: dict[int, str] = {}


def heartbeat_frame(now: float) -> str:
    """The answer to a heartbeat at ``now`` (epoch seconds), as a text frame. Idle volunteers
    send nothing else, so at scale this is the server's commonest answer: it is made once a
    second, to the second."""
    second = int(now)
    frame = _heartbeat_frames.get(second)
    if frame is None:
        when = datetime.fromtimestamp(second, UTC)
        frame = encode(heartbeat(when))
        _heartbeat_frames.clear()
        _heartbeat_frames[second] = frame
    return frame
