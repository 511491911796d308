"""What a volunteer's socket asks of the database, and the answers it gets.

An op carries everything its statements need (the host as the socket knows it from its
hello, the replica, the lease token, the output already serialised), so that a flush of many
ops from many sockets touches no model and makes no per-op query. Checks that need no
database (a cpu time that is not a number, an output over the size limit) are made here,
before an op exists.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings

from compute.numbers import finite_float

if TYPE_CHECKING:
    from compute.models import Host


class Refusal(enum.StrEnum):
    UNKNOWN_REPLICA = "unknown_replica"
    NOT_YOURS = "not_yours"
    BAD_LEASE = "bad_lease"
    NOT_IN_PROGRESS = "not_in_progress"
    LEASE_EXPIRED = "lease_expired"
    OUTPUT_TOO_LARGE = "output_too_large"
    BAD_CPU_TIME = "bad_cpu_time"


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to a result, an error report or a progress report."""

    accepted: bool
    refusal: Refusal | None = None
    workunit_id: int | None = None
    validation_queued: bool = False
    deadline: datetime | None = None

    @classmethod
    def refused(cls, reason: Refusal) -> Receipt:
        return cls(False, reason)


@dataclass(frozen=True, slots=True)
class HostRef:
    """What the dispatch path needs to know of a host: read once at hello. Whether it is
    banned and how many replicas it holds are read fresh by every lease."""

    id: int
    user_id: int | None
    cores: int
    platform_class: str
    memory_mb: int
    has_wasm: bool
    has_simd: bool
    has_threads: bool
    benchmark_fpops: float
    # An anonymous host computes for the projects it named; a signed-in one for its
    # active memberships (None).
    project_ids: tuple[int, ...] | None = None

    @classmethod
    def of(cls, host: Host, project_ids: list[int] | tuple[int, ...] | None = None) -> HostRef:
        return cls(
            id=host.id,
            user_id=host.user_id,
            cores=max(1, host.cores),
            platform_class=host.platform_class,
            memory_mb=host.memory_mb,
            has_wasm=host.has_wasm,
            has_simd=host.has_simd,
            has_threads=host.has_threads,
            benchmark_fpops=host.benchmark_fpops,
            project_ids=None if project_ids is None else tuple(project_ids),
        )


@dataclass(frozen=True, slots=True)
class ReportResult:
    host: HostRef
    replica_id: int
    token: str
    output: str  # the output as JSON text
    cpu_time: float


@dataclass(frozen=True, slots=True)
class ReportError:
    host: HostRef
    replica_id: int
    token: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReportProgress:
    host: HostRef
    replica_id: int
    token: str
    fraction: float


@dataclass(frozen=True, slots=True)
class Lease:
    host: HostRef
    want: int


@dataclass(frozen=True, slots=True)
class Touch:
    """Hosts seen recently (a hint for pages and the admin: gathered for a few seconds)."""

    host_ids: tuple[int, ...]


Op = ReportResult | ReportError | ReportProgress | Lease | Touch


class Failed(enum.Enum):
    """The answer to an op the server could not carry out (its flush failed, or the dispatch
    cache was unavailable for a lease): nothing of it was stored; the host may retry."""

    SERVER_ERROR = "server_error"


FAILED = Failed.SERVER_ERROR


class Unavailable(RuntimeError):
    """Raised by the one-op entry points where a flush would answer ``server_error``."""


def result_report(
    host: HostRef, replica_id: int, token: str, output: object, cpu_time: object
) -> ReportResult | Receipt:
    """The op for a result, or the receipt refusing it without asking the database."""
    cpu_seconds = finite_float(cpu_time)
    if cpu_seconds is None or cpu_seconds < 0:
        return Receipt.refused(Refusal.BAD_CPU_TIME)
    text = json.dumps(output, separators=(",", ":"))
    if len(text) > settings.COMPUTE["MAX_OUTPUT_BYTES"]:
        return Receipt.refused(Refusal.OUTPUT_TOO_LARGE)
    return ReportResult(host, replica_id, token, text, cpu_seconds)
