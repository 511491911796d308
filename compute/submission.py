"""Submitting work: batches of work units from JSON Lines or a parameter range, cancelling
batches, and retrying failed work units."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compute import jsonvalues, lifecycle
from compute.models import App, Batch, Project, Replica, WorkUnit
from compute.numbers import finite_float
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


SWEEP_MODES = ("grid", "zip")
# The most work units one batch may have, whichever way it is submitted.
MAX_BATCH_WORKUNITS = 1_000_000


def parameter_range(
    template: dict[str, Any], parameter: str, start: float, stop: float, step: float
) -> list[dict[str, Any]]:
    """One input per value of ``parameter`` in [start, stop) by ``step``, the rest from
    ``template``."""
    return sweep_inputs(template, {parameter: {"start": start, "stop": stop, "step": step}})


def sweep_inputs(
    template: Mapping[str, Any], parameters: Mapping[str, Any], mode: str = "grid"
) -> list[dict[str, Any]]:
    """The inputs of a sweep: ``template`` with each parameter set to one of its values.

    A parameter's values are a list, or a range ``{"start", "stop", "step"}`` (``stop`` not
    included, as in Python's range; ``step`` 1 when left out). ``grid`` makes one input per
    combination (the cartesian product, the first parameter varying slowest); ``zip`` takes
    the lists in parallel, the i-th input having the i-th value of each, so they must be
    equally long. Anything wrong raises ValidationError before a single input is made,
    and so does a sweep of more than ``MAX_BATCH_WORKUNITS`` inputs."""
    if mode not in SWEEP_MODES:
        raise ValidationError(f"mode must be 'grid' or 'zip', not {mode!r}")
    if not isinstance(template, Mapping):
        raise ValidationError("template: must be a JSON object")
    if not parameters:
        raise ValidationError("a sweep needs at least one parameter")
    counts: dict[str, int] = {}
    for name, spec in parameters.items():
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("a parameter's name must not be blank")
        counts[name] = _count(name, spec)
    if mode == "zip":
        if len(set(counts.values())) > 1:
            lengths = ", ".join(f"{name} has {n}" for name, n in counts.items())
            raise ValidationError(f"zip needs lists of the same length: {lengths}")
        total = next(iter(counts.values()))
    else:
        total = math.prod(counts.values())
    if total > MAX_BATCH_WORKUNITS:
        raise ValidationError(
            f"the sweep makes {total:,} work units; a batch may have at most "
            f"{MAX_BATCH_WORKUNITS:,}"
        )
    columns = [_values(spec) for spec in parameters.values()]
    rows = zip(*columns, strict=True) if mode == "zip" else itertools.product(*columns)
    names = list(parameters)
    return [{**template, **dict(zip(names, row, strict=True))} for row in rows]


def _count(name: str, spec: Any) -> int:
    if isinstance(spec, list | tuple):
        n = len(spec)
    elif isinstance(spec, Mapping):
        n = _range_count(name, spec)
    else:
        raise ValidationError(
            f"parameter {name!r}: give a list of values or a range {{start, stop, step}}"
        )
    if n == 0:
        empty = "the list is empty" if isinstance(spec, list | tuple) else "the range is empty"
        raise ValidationError(f"parameter {name!r}: {empty}")
    if n > MAX_BATCH_WORKUNITS:
        raise ValidationError(
            f"parameter {name!r}: {n:,} values; a batch may have at most "
            f"{MAX_BATCH_WORKUNITS:,} work units"
        )
    return n


def _range(name: str, spec: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    unknown = set(spec) - {"start", "stop", "step"}
    if unknown or "start" not in spec or "stop" not in spec:
        raise ValidationError(f"parameter {name!r}: a range is {{start, stop, step}}")
    bounds = []
    for key in ("start", "stop", "step"):
        value = spec.get(key, 1)
        if finite_float(value) is None:  # a bool, a non-number, NaN, infinite or too large
            raise ValidationError(f"parameter {name!r}: {key} must be a finite number")
        # Decimal arithmetic keeps 0.1-steps exact.
        bounds.append(Decimal(str(value)))
    start, stop, step = bounds
    if step == 0:
        raise ValidationError(f"parameter {name!r}: step must not be zero")
    return start, stop, step


def _range_count(name: str, spec: Mapping[str, Any]) -> int:
    return _steps(*_range(name, spec))


def _steps(start: Decimal, stop: Decimal, step: Decimal) -> int:
    return max(0, math.ceil((stop - start) / step))


def _values(spec: Any) -> list[Any]:
    if not isinstance(spec, Mapping):
        return list(spec)
    start, stop, step = _range("", spec)
    values = (start + i * step for i in range(_steps(start, stop, step)))
    return [int(v) if v == v.to_integral_value() else float(v) for v in values]


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
