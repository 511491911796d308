"""Submitting work: batches of work units from JSON Lines or a parameter range, cancelling
batches, and retrying failed work units."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compute import jsonvalues, lifecycle
from compute.models import App, Batch, Project, Replica, WorkUnit
from compute.states import AssimilateState, BatchState, ErrorMask, Replication

CHUNK = 1000
MAX_INPUT_BYTES = 256 * 1024


def parse_jsonl(stream: IO[str] | Iterable[str]) -> list[Any]:
    """Inputs from JSON Lines, one JSON value per line; blank lines are skipped.

    Raises ValidationError naming the first bad line, so nothing is submitted from a file
    that is only partly valid."""
    inputs = []
    for number, line in enumerate(stream, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValidationError(f"line {number}: not UTF-8 text") from e
        if not line.strip():
            continue
        if len(line.encode()) > MAX_INPUT_BYTES:
            raise ValidationError(f"line {number}: input larger than {MAX_INPUT_BYTES} bytes")
        try:
            value = json.loads(line, parse_constant=_not_a_number)
        except json.JSONDecodeError as e:
            raise ValidationError(f"line {number}: not valid JSON ({e.msg})") from e
        except _NotJSON as e:
            raise ValidationError(f"line {number}: not valid JSON ({e})") from e
        except ValueError as e:  # int()'s limit on digits
            raise ValidationError(f"line {number}: a number with too many digits") from e
        found = jsonvalues.problem(value)
        if found:
            raise ValidationError(f"line {number}: {found}")
        inputs.append(value)
    if not inputs:
        raise ValidationError("no inputs: the file has no JSON lines")
    return inputs


class _NotJSON(ValueError):
    pass


def _not_a_number(name: str) -> None:
    raise _NotJSON(f"{name} is not a JSON number")


def parameter_range(
    template: dict[str, Any], parameter: str, start: float, stop: float, step: float
) -> list[dict[str, Any]]:
    """One input per value of ``parameter`` in [start, stop) by ``step``, the rest from
    ``template``. Decimal arithmetic keeps 0.1-steps exact."""
    if step == 0:
        raise ValidationError("step must not be zero")
    if (stop - start) / step > 1_000_000:
        raise ValidationError("a range may make at most 1,000,000 work units")
    values: list[float] = []
    d_start, d_stop, d_step = Decimal(str(start)), Decimal(str(stop)), Decimal(str(step))
    value = d_start
    while (value < d_stop) if d_step > 0 else (value > d_stop):
        values.append(int(value) if value == value.to_integral_value() else float(value))
        value += d_step
    if not values:
        raise ValidationError("the range is empty")
    return [{**template, parameter: v} for v in values]


def create_batch(
    project: Project,
    app: App,
    inputs: Iterable[Any],
    *,
    name: str,
    priority: int = 0,
    submitter=None,
) -> Batch:
    """Create a batch, its work units and their first replicas, in one transaction."""
    if app.project_id != project.id:
        raise ValidationError("the app does not belong to this project")
    inputs = list(inputs)
    if not inputs:
        raise ValidationError("a batch needs at least one input")
    for i, value in enumerate(inputs, start=1):
        # Every way in (the API, the admin, the command line) passes here.
        found = jsonvalues.problem(value)
        if found:
            raise ValidationError(f"input {i}: {found}")
        if len(json.dumps(value).encode()) > MAX_INPUT_BYTES:
            raise ValidationError(f"input {i} is larger than {MAX_INPUT_BYTES} bytes")
    adaptive = app.adaptive_replication
    with transaction.atomic():
        batch = Batch.objects.create(
            project=project,
            app=app,
            name=name,
            priority=priority,
            submitter=submitter,
            n_workunits=len(inputs),
        )
        for offset in range(0, len(inputs), CHUNK):
            chunk = inputs[offset : offset + CHUNK]
            workunits = WorkUnit.objects.bulk_create(
                [
                    WorkUnit(
                        project=project,
                        app=app,
                        batch=batch,
                        name=f"{project.slug}_{batch.id}_{offset + i}",
                        input=value,
                        priority=priority,
                        # Adaptive apps start with one replica and decide at the first lease.
                        min_quorum=1 if adaptive else project.min_quorum,
                        target_nresults=1 if adaptive else project.target_nresults,
                        max_error_results=project.max_error_results,
                        max_total_results=project.max_total_results,
                        max_success_results=project.max_success_results,
                        delay_bound=project.delay_bound,
                        replication=Replication.ADAPTIVE_PENDING if adaptive else Replication.FIXED,
                    )
                    for i, value in enumerate(chunk)
                ]
            )
            Replica.objects.bulk_create(
                [
                    replica
                    for wu in workunits
                    for replica in lifecycle.new_replicas(wu, wu.target_nresults, 0)
                ]
            )
    return batch


def cancel_workunits(workunit_ids: list[int], now: datetime | None = None) -> int:
    """Cancel work units that have no canonical result yet; the transitioner winds them down
    (hosts holding their replicas are told to stop) and the assimilator counts them."""
    from compute.transitioner import transition_workunit

    now = now or timezone.now()
    ids = list(
        WorkUnit.objects.filter(
            id__in=workunit_ids, canonical_replica__isnull=True, error_mask=0
        ).values_list("id", flat=True)
    )
    WorkUnit.objects.filter(id__in=ids).update(
        error_mask=F("error_mask").bitor(int(ErrorMask.CANCELLED)), transition_time=now
    )
    for wu_id in ids:
        transition_workunit(wu_id, now)
    return len(ids)


def cancel_batch(batch: Batch, now: datetime | None = None) -> int:
    with transaction.atomic():
        ids = list(batch.workunits.values_list("id", flat=True))
        cancelled = cancel_workunits(ids, now)
        Batch.objects.filter(id=batch.id, state=BatchState.IN_PROGRESS).update(
            state=BatchState.CANCELLED, completed_at=now or timezone.now()
        )
    return cancelled


def retry_workunits(workunit_ids: list[int], now: datetime | None = None) -> int:
    """Give failed work units another round: a handler failure is assimilated again; a work
    unit that errored (not cancelled) gets its error cleared, doubled limits and new replicas."""
    from compute.assimilation import retry_failed
    from compute.transitioner import bump_limits, transition_workunit

    now = now or timezone.now()
    retried = retry_failed(workunit_ids)
    errored = list(
        WorkUnit.objects.filter(id__in=workunit_ids, error_mask__gt=0)
        .exclude(error_mask=int(ErrorMask.CANCELLED))
        .values_list("id", "batch_id", "assimilate_state")
    )
    reopened = []
    with transaction.atomic():
        for wu_id, batch_id, state in errored:
            if not lifecycle.reopen(wu_id, now):
                continue
            reopened.append(wu_id)
            if batch_id and state == AssimilateState.DONE:
                Batch.objects.filter(id=batch_id).update(n_errored=F("n_errored") - 1)
                # A finished batch is open again; a cancelled one stays cancelled.
                Batch.objects.filter(id=batch_id, state=BatchState.COMPLETED).update(
                    state=BatchState.IN_PROGRESS, completed_at=None
                )
        bump_limits(reopened)
        for wu_id in reopened:
            transition_workunit(wu_id, now)
    return retried + len(reopened)


def iter_outputs(batch: Batch) -> Iterator[dict[str, Any]]:
    for out in batch.outputs.order_by("workunit_id").iterator(chunk_size=1000):
        yield {"workunit": out.name, "input": out.input, "output": out.output}
