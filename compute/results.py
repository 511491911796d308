"""Results, errors and progress reports from volunteers, one at a time.

Sockets send theirs through the process's writer, many to a flush
(:mod:`compute.dispatch.writer`); these functions take the same path for one report, in the
caller's thread and transaction (commands, tests, the headless volunteer's in-process use).
A result is written by one conditional UPDATE (right host, right lease token, still in
progress, before the deadline), so a replay, a late upload or a forged replica id changes
nothing; the caller gets the reason. Validation is queued only when the work unit reaches
its quorum.
"""

from __future__ import annotations

from datetime import datetime

from compute.dispatch import flush
from compute.dispatch.ops import (
    HostRef,
    Op,
    Receipt,
    Refusal,
    ReportError,
    ReportProgress,
    result_report,
)
from compute.models import Host

__all__ = ["Receipt", "Refusal", "extend_lease", "record_error", "record_result"]


def _one(op: Op, now: datetime | None) -> Receipt:
    (receipt,) = flush.apply([op], now=now)
    return receipt


def record_result(
    host: Host,
    replica_id: int,
    token: str,
    output: object,
    cpu_time: float,
    now: datetime | None = None,
) -> Receipt:
    op = result_report(HostRef.of(host), replica_id, token, output, cpu_time)
    return op if isinstance(op, Receipt) else _one(op, now)


def record_error(
    host: Host, replica_id: int, token: str, reason: str, now: datetime | None = None
) -> Receipt:
    """A client error (the kernel failed, the volunteer aborted): the replica is over, the
    host's quota shrinks and the transitioner decides whether to send another copy."""
    return _one(ReportError(HostRef.of(host), replica_id, token, str(reason)), now)


def extend_lease(
    host: Host, replica_id: int, token: str, fraction_done: float, now: datetime | None = None
) -> Receipt:
    """A progress report keeps a lease alive (see ``dispatch.reports.record_progress``)."""
    return _one(ReportProgress(HostRef.of(host), replica_id, token, fraction_done), now)
