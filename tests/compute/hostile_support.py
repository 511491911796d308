"""Hostile volunteers for the security suites: non-colluding wrong outputs, a snapshot of the
whole database, and the invariants a run with cheating hosts must keep.

Used by ``tests/compute/test_hostile_clients.py`` (SQLite, in-process ASGI) and
``tests/integration/test_hostile_clients.py`` (PostgreSQL, uvicorn and a Celery worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db.models import Count, Sum

from compute.models import AssimilatedOutput, CreditEntry, Host, HostApp, Replica, WorkUnit
from compute.states import AssimilateState, Outcome, ServerState, ValidateState


def wrong_output(data: dict, cheater: int) -> dict:
    """Cheater ``cheater``'s answer to the square app: wrong, and different from every other
    cheater's for the same input, so cheaters never agree with each other (non-colluding)."""
    return {"y": data["x"] * data["x"] + 1 + cheater}


# --- "nothing else changed" -------------------------------------------------------------------


Snapshot = dict[str, list[dict[str, Any]]]


def database_snapshot() -> Snapshot:
    """Every row of every table of the project's models (replicas, work units, the ledger,
    hosts and their counters, reliability records, users, sessions ...), by model, in
    primary-key order."""
    out: Snapshot = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        out[meta.label] = list(model._default_manager.order_by("pk").values())
    return out


def snapshot_changes(before: Snapshot, after: Snapshot, limit: int = 10) -> list[str]:
    """What differs between two snapshots, row by row (empty when they are identical)."""
    changes: list[str] = []
    for label in sorted(set(before) | set(after)):
        old = {row["id"] if "id" in row else repr(row): row for row in before.get(label, [])}
        new = {row["id"] if "id" in row else repr(row): row for row in after.get(label, [])}
        for key in sorted(set(old) | set(new), key=repr):
            if old.get(key) == new.get(key):
                continue
            if key not in old:
                changes.append(f"{label} {key}: added {new[key]}")
            elif key not in new:
                changes.append(f"{label} {key}: deleted {old[key]}")
            else:
                fields = {
                    f: (old[key][f], new[key][f]) for f in old[key] if old[key][f] != new[key][f]
                }
                changes.append(f"{label} {key}: changed {fields}")
            if len(changes) >= limit:
                return changes
    return changes


# --- the invariants of a run with cheaters ----------------------------------------------------


@dataclass(frozen=True)
class RunFigures:
    workunits: int
    wrong_canonical: int
    cheater_credit: float
    cheater_quota_after: list[int]
    honest_credit: float
    invalid_results: int
    extra_replica_workunits: int


def check_cheaters_caught(
    batch_id: int,
    app_id: int,
    honest: Iterable[int],
    cheaters: Iterable[int],
    reference: Callable[[Any], Any],
    starting_quota: int,
) -> RunFigures:
    """Assert what a finished batch computed by honest hosts and non-colluding cheaters must
    show, and return the figures:

    - every work unit is terminal: assimilated, validated with a canonical replica and no
      error, not flagged for validation, no replica unsent or in progress;
    - every canonical output (and every assimilated output) is the Python reference's;
    - cheaters earned nothing: no ledger row, total credit 0, no valid or canonical replica,
      at least one invalid result each, and a daily quota below the starting one;
    - honest hosts' results are all valid and credited, their totals equal their ledger;
    - the ledger holds one row per valid replica and nothing else.
    """
    honest, cheaters = sorted(set(honest)), sorted(set(cheaters))
    workunits = list(WorkUnit.objects.filter(batch_id=batch_id).select_related("canonical_replica"))
    replicas = Replica.objects.filter(workunit__batch_id=batch_id)

    not_terminal = [
        wu.id
        for wu in workunits
        if wu.assimilate_state != AssimilateState.DONE
        or wu.need_validate
        or wu.error_mask
        or wu.canonical_replica_id is None
    ]
    assert not not_terminal, f"work units not validated and assimilated: {not_terminal}"
    out_there = replicas.filter(server_state__in=[ServerState.UNSENT, ServerState.IN_PROGRESS])
    assert not out_there.exists(), list(out_there.values("id", "workunit_id", "server_state"))

    wrong = [wu.id for wu in workunits if wu.canonical_replica.output != reference(wu.input)]
    assert not wrong, f"wrong canonical outputs for work units {wrong}"
    outputs = AssimilatedOutput.objects.filter(workunit_id__in=[wu.id for wu in workunits])
    assert outputs.count() == len(workunits)
    assert all(o.output == reference(o.input) for o in outputs)

    canonical_hosts = {wu.canonical_replica.host_id for wu in workunits}
    assert not canonical_hosts & set(cheaters), "a cheater's replica became canonical"
    assert not CreditEntry.objects.filter(host_id__in=cheaters).exists()
    quotas = dict(
        HostApp.objects.filter(host_id__in=cheaters, app_id=app_id).values_list(
            "host_id", "daily_quota"
        )
    )
    for host in Host.objects.filter(id__in=cheaters):
        theirs = replicas.filter(host_id=host.id)
        assert host.total_credit == 0, f"cheater {host.id} has {host.total_credit} credit"
        assert not theirs.filter(validate_state=ValidateState.VALID).exists()
        assert theirs.filter(validate_state=ValidateState.INVALID).exists(), (
            f"cheater {host.id} returned no result that was found invalid"
        )
        assert host.n_valid == 0
        assert host.n_invalid == theirs.filter(validate_state=ValidateState.INVALID).count()
        assert quotas[host.id] < starting_quota, (host.id, quotas[host.id], starting_quota)

    ledger = {
        row["host_id"]: row["total"]
        for row in CreditEntry.objects.values("host_id").annotate(total=Sum("amount")).order_by()
    }
    honest_credit = 0.0
    for host in Host.objects.filter(id__in=honest):
        theirs = replicas.filter(host_id=host.id, outcome=Outcome.SUCCESS)
        assert not theirs.exclude(validate_state=ValidateState.VALID).exists(), (
            f"an honest result of host {host.id} was not found valid"
        )
        if theirs.exists():
            assert host.total_credit > 0, f"honest host {host.id} earned nothing"
        assert abs(host.total_credit - ledger.get(host.id, 0.0)) < 1e-9
        honest_credit += host.total_credit

    twice = (
        CreditEntry.objects.values("replica_id").annotate(n=Count("id")).filter(n__gt=1).order_by()
    )
    assert not twice.exists(), "a replica was credited twice"
    valid = set(replicas.filter(validate_state=ValidateState.VALID).values_list("id", flat=True))
    credited = set(
        CreditEntry.objects.filter(workunit_id__in=[wu.id for wu in workunits]).values_list(
            "replica_id", flat=True
        )
    )
    assert credited == valid, "the ledger does not hold exactly one row per valid replica"

    invalid = replicas.filter(validate_state=ValidateState.INVALID)
    extra = (
        WorkUnit.objects.filter(
            batch_id=batch_id, replicas__in=invalid.filter(host_id__in=cheaters)
        )
        .distinct()
        .count()
    )
    return RunFigures(
        workunits=len(workunits),
        wrong_canonical=len(wrong),
        cheater_credit=sum(
            Host.objects.filter(id__in=cheaters).values_list("total_credit", flat=True)
        ),
        cheater_quota_after=[quotas[c] for c in cheaters],
        honest_credit=honest_credit,
        invalid_results=invalid.count(),
        extra_replica_workunits=extra,
    )
