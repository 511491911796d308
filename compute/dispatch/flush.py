"""One flush: a list of ops from any number of sockets, in one transaction.

Reports come first (results, errors, progress, then last-seen times), then leases, so a
result and the request riding with it see each other: the host's in-flight count already
excludes the replica it just returned. Results are counted on their work units last of all,
just before the commit: those rows are shared with other processes' flushes (the other
replicas of a work unit), and a flush holds their locks only from there to its commit. Each
kind is a handful of set-based statements, whatever the number of ops; answers come back in
the order of the ops.

Runs on the calling thread's database connection: the writer's own thread for sockets, or
the caller's thread (and transaction) for ``scheduler.lease_replicas`` and the
``results`` functions.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from compute import retry
from compute.dispatch import dialect, leasing, reports
from compute.dispatch.candidates import Candidates
from compute.dispatch.ops import (
    FAILED,
    Failed,
    Lease,
    Op,
    Receipt,
    ReportError,
    ReportProgress,
    ReportResult,
    Touch,
)
from compute.scheduler import Assignment

Answer = Receipt | list[Assignment] | Failed | None

REPORTS = (
    (ReportError, reports.record_errors),
    (ReportProgress, reports.record_progress),
)


def apply(
    ops: Sequence[Op],
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
    committed: Callable[[list[Answer]], None] | None = None,
) -> list[Answer]:
    """Carry out ``ops`` in one transaction and return their answers.

    ``committed`` is called with the answers as soon as the transaction has committed,
    before whatever the flush queued for after its commit (a validation request, which runs
    at once where Celery runs in-process): hosts hear that their results are stored before
    they hear of the credit for them.

    A lease that another process's concurrent lease makes a second replica of one work unit
    for the same host or user is refused by the database; the flush is then made again (once),
    and its fresh read of what the hosts hold leaves that replica out."""
    for attempt in (1, 2):
        try:
            return _apply(ops, now=now, rng=rng, committed=committed)
        except IntegrityError:
            if attempt == 2 or transaction.get_connection().in_atomic_block:
                raise
    raise AssertionError("unreachable")


@retry.on_conflict()
def _apply(
    ops: Sequence[Op],
    *,
    now: datetime | None,
    rng: random.Random | None,
    committed: Callable[[list[Answer]], None] | None,
) -> list[Answer]:
    now = now or timezone.now()
    sql = dialect.current()
    kinds: dict[type, list[int]] = defaultdict(list)
    for i, op in enumerate(ops):
        kinds[type(op)].append(i)
    answers: list[Answer] = [None] * len(ops)
    candidates = None
    owned = not transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic():
            if committed is not None:
                transaction.on_commit(lambda: committed(answers))
            for kind, record in REPORTS:
                if kind in kinds:
                    chosen = kinds[kind]
                    for i, receipt in zip(
                        chosen, record(sql, [ops[i] for i in chosen], now), strict=True
                    ):
                        answers[i] = receipt
            if Touch in kinds:
                reports.touch_hosts(sql, [h for i in kinds[Touch] for h in ops[i].host_ids], now)
            # One pipeline before anything is decided: the results, and what the leases
            # need to know (the hosts' standing, their users' memberships, the candidates
            # popped for them). The standing sees the results: a returned replica no
            # longer counts against its host's limit.
            results = kinds.get(ReportResult, [])
            leases = kinds.get(Lease, [])
            requests = [ops[i] for i in leases]
            first: list[tuple[str, list]] = []
            if results:
                statement, partial = reports.results_statement(sql, [ops[i] for i in results], now)
                first.append(statement)
            reads: dict[str, int] = {}
            if leases:
                candidates = Candidates(sql, {op.host for op in requests})
                for name, statement in (
                    ("standing", leasing.standing_statement(sql, requests)),
                    ("memberships", leasing.memberships_statement(sql, requests)),
                    ("candidates", candidates.pop_ahead(leasing.ahead(requests))),
                ):
                    if statement is not None:
                        reads[name] = len(first)
                        first.append(statement)
            rows = sql.execute_all(first)
            if results:
                recorded = reports.recorded(partial, rows[0])
            plan = None
            final: list[tuple[str, list]] = []
            if leases:
                if "candidates" in reads:
                    candidates.loaded(rows[reads["candidates"]])
                plan = leasing.plan(
                    sql,
                    requests,
                    candidates,
                    now,
                    rng,
                    rows[reads["standing"]] if "standing" in reads else [],
                    rows[reads["memberships"]] if "memberships" in reads else [],
                )
                final += plan.statements(sql)
            count = reports.count_statement(sql, recorded) if results else None
            if count is not None:
                final.append(count)
            # The leases, their jobs counted and the results counted go to the database in
            # one pipeline: none needs anything back from another. When the flush owns its
            # transaction and reading the answers back needs no statement, the COMMIT goes
            # with them.
            last = (
                owned
                and (plan is None or plan.settled())
                and (not results or reports.settled(recorded))
            )
            rows = sql.execute_all(final, commit=last)
            if plan is not None:
                leased = rows[0] if plan.rows else []
                for i, assignments in zip(leases, plan.answers(sql, requests, leased), strict=True):
                    answers[i] = assignments if assignments or not candidates.failed else FAILED
            if results:
                count_rows = rows[-1] if count is not None else []
                for i, receipt in zip(
                    results, reports.counted(sql, recorded, count_rows, now), strict=True
                ):
                    answers[i] = receipt
    except BaseException:
        if candidates is not None:
            candidates.give_back_all()
        raise
    if candidates is not None:
        candidates.give_back()
    return answers
