"""Property tests: random interleavings of lease, result, error, timeout, validate and
assimilate keep the engine's invariants."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute import assimilation, feeder, results, submission, transitioner, validation
from compute.catalog import catalog
from compute.models import CreditEntry, Host, Replica, WorkUnit
from compute.scheduler import lease_replicas
from compute.states import AssimilateState, ServerState, ValidateState
from tests.simulation import SimHost, Simulation
from tests.support import square

OPS = [
    "lease",
    "good",
    "bad",
    "error",
    "forge",
    "forge_token",
    "replay",
    "tick",
    "validate",
    "assimilate",
    "transition",
]
_unique = itertools.count()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 3)), max_size=50),
    quorum=st.integers(1, 3),
    extra=st.integers(0, 1),
    n_workunits=st.integers(1, 4),
)
def test_random_interleavings_keep_the_invariants(
    project_factory, host_factory, ops, quorum, extra, n_workunits
):
    feeder.get_queue().clear()
    catalog.invalidate()
    project = project_factory(
        min_quorum=quorum,
        target_nresults=quorum + extra,
        max_error_results=2,
        max_total_results=quorum + extra + 3,
        max_success_results=quorum + 2,
        delay_bound=100,
    )
    batch = submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(n_workunits)], name="p"
    )
    hosts = [host_factory(project, cores=1) for _ in range(4)]
    held: dict[int, list] = {h.id: [] for h in hosts}
    spent: list[tuple[Host, object]] = []
    now = timezone.now()
    rng = random.Random(0)

    for op, i in ops:
        host = hosts[i]
        mine = held[host.id]
        if op == "lease":
            for a in lease_replicas(host, 2, now=now, rng=rng):
                r = Replica.objects.get(id=a.replica_id)
                assert r.host_id == host.id
                assert r.server_state == ServerState.IN_PROGRESS
                mine.append(a)
        elif op in ("good", "bad", "error") and mine:
            a = mine.pop(0)
            before = Replica.objects.get(id=a.replica_id)
            if op == "error":
                receipt = results.record_error(host, a.replica_id, a.lease_token, "x", now)
            else:
                output = square(a.input) if op == "good" else {"y": -1 - next(_unique)}
                receipt = results.record_result(host, a.replica_id, a.lease_token, output, 1.0, now)
            # Accepted exactly when the replica was still in progress and its lease current.
            open_lease = before.server_state == ServerState.IN_PROGRESS and before.deadline >= now
            assert receipt.accepted == open_lease
            spent.append((host, a))
        elif op == "forge":
            others = [(h, a) for h in hosts if h.id != host.id for a in held[h.id]]
            if others:
                _, a = others[0]
                before = Replica.objects.get(id=a.replica_id)
                assert not results.record_result(
                    host, a.replica_id, a.lease_token, {"y": 0}, 1.0, now
                ).accepted
                assert Replica.objects.get(id=a.replica_id).server_state == before.server_state
        elif op == "forge_token":
            # The host that holds the lease, its replica, a token that is not the lease's.
            holders = [(h, a) for h in hosts for a in held[h.id]]
            if holders:
                holder, a = holders[i % len(holders)]
                wrong = "0" * 32 if a.lease_token != "0" * 32 else "1" * 32
                row = Replica.objects.filter(id=a.replica_id)
                before = row.values().get()
                if i % 2:
                    report = results.record_error(holder, a.replica_id, wrong, "x", now)
                else:
                    output = square(a.input)
                    report = results.record_result(holder, a.replica_id, wrong, output, 1.0, now)
                assert not report.accepted
                assert row.values().get() == before
        elif op == "replay" and spent:
            h, a = spent[-1]
            assert not results.record_result(
                h, a.replica_id, a.lease_token, {"y": 0}, 1.0, now
            ).accepted
        elif op == "tick":
            now += timedelta(seconds=60)
        elif op == "validate":
            validation.validate_pending(now=now)
        elif op == "assimilate":
            assimilation.assimilate_pending(now=now)
        elif op == "transition":
            transitioner.run_transitioner(now)

    # Fresh honest volunteers finish whatever is left.
    now += timedelta(seconds=101)
    fleet = [SimHost(host_factory(project, cores=2)) for _ in range(quorum + extra + 6)]
    sim = Simulation(fleet, start=now)
    sim.sweep()
    sim.run_until_done(WorkUnit.objects.filter(batch=batch), max_rounds=60, seconds_per_round=150)

    for wu in WorkUnit.objects.filter(batch=batch):
        replicas = list(wu.replicas.all())
        assert wu.assimilate_state == AssimilateState.DONE
        assert (wu.error_mask > 0) != (wu.canonical_replica_id is not None)
        assert len(replicas) <= wu.max_total_results
        valid = [r for r in replicas if r.validate_state == ValidateState.VALID]
        if wu.canonical_replica_id:
            assert len(valid) >= wu.min_quorum // 2 + 1
            if wu.min_quorum >= 2:
                # Wrong outputs never agree with each other, so a quorum is always right.
                assert wu.canonical_replica.output == square(wu.input)
        credited = set(
            CreditEntry.objects.filter(workunit_id=wu.id).values_list("replica_id", flat=True)
        )
        assert credited == {r.id for r in valid}

    for h in Host.objects.filter(replicas__workunit__batch=batch).distinct():
        ledger = CreditEntry.objects.filter(host=h).aggregate(s=Sum("amount"))["s"] or 0.0
        assert abs(h.total_credit - ledger) < 1e-9
