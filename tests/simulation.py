"""A simulated volunteer fleet driving the engine's domain functions on a simulated clock.

Hosts lease work, compute the app's Python reference (or misbehave), and report; the daemons
run as the periodic sweeps would. Used by the scenario and property tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from compute import assimilation, feeder, results, scheduler, transitioner, validation
from compute.dotted import resolve
from compute.models import Host, WorkUnit
from compute.scheduler import Assignment
from compute.states import AssimilateState

HONEST, CHEATER, SILENT, FLAKY = "honest", "cheater", "silent", "flaky"
CPU_TIME = 30.0


@dataclass
class SimHost:
    host: Host
    behaviour: str = HONEST
    held: list[Assignment] = field(default_factory=list)
    accepted: int = 0
    refused: int = 0


class Simulation:
    def __init__(self, hosts: list[SimHost], seed: int = 1, start: datetime | None = None) -> None:
        self.hosts = hosts
        self.rng = random.Random(seed)
        self.now = start or timezone.now()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def compute(self, sim: SimHost, a: Assignment) -> None:
        if sim.behaviour == SILENT:
            return
        sim.held.remove(a)
        done_at = self.now + timedelta(seconds=CPU_TIME)
        if sim.behaviour == FLAKY and self.rng.random() < 0.3:
            receipt = results.record_error(
                sim.host, a.replica_id, a.lease_token, "crashed", done_at
            )
        else:
            output = resolve(_reference(a))(a.input)
            if sim.behaviour == CHEATER:
                output = {"y": -1, "cheat": self.rng.randrange(10**6)}
            receipt = results.record_result(
                sim.host, a.replica_id, a.lease_token, output, cpu_time=CPU_TIME, now=done_at
            )
        if receipt.accepted:
            sim.accepted += 1
        else:
            sim.refused += 1

    def step(self, request: int = 4) -> None:
        """One round: every host asks for work and computes what it holds; then the sweeps."""
        for sim in self.hosts:
            sim.held += scheduler.lease_replicas(sim.host, request, now=self.now, rng=self.rng)
            for a in list(sim.held):
                self.compute(sim, a)
        self.sweep()

    def sweep(self) -> None:
        # The daemons run after this round's results came in.
        now = self.now + timedelta(seconds=CPU_TIME)
        transitioner.run_transitioner(now)
        feeder.refill_all()
        validation.validate_pending(now=now)
        assimilation.assimilate_pending(now=now)
        transitioner.run_transitioner(now)

    def run_until_done(self, workunits, max_rounds: int = 200, seconds_per_round: float = 60):
        for _ in range(max_rounds):
            if not workunits.exclude(assimilate_state=AssimilateState.DONE).exists():
                return
            self.step()
            self.advance(seconds_per_round)
        raise AssertionError(
            f"{workunits.exclude(assimilate_state=AssimilateState.DONE).count()} work units "
            f"unfinished after {max_rounds} rounds"
        )


def _reference(a: Assignment) -> str:
    return WorkUnit.objects.select_related("app").get(id=a.workunit_id).app.reference_path
