"""The engine end to end: quorum 2, 100 work units, five hosts, one cheating, one silent."""

from __future__ import annotations

import pytest

from compute import submission
from compute.models import AssimilatedOutput, CreditEntry, HostApp, Replica, WorkUnit
from compute.states import AssimilateState, Outcome, ValidateState
from tests.simulation import CHEATER, HONEST, SILENT, SimHost, Simulation
from tests.support import square


@pytest.fixture
def fleet(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2, delay_bound=600)
    batch = submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(100)], name="squares"
    )
    behaviours = [HONEST, HONEST, HONEST, CHEATER, SILENT]
    hosts = [SimHost(host_factory(project, cores=2), b) for b in behaviours]
    return project, batch, hosts


def test_all_work_units_end_valid_with_correct_outputs_despite_a_cheater_and_a_silent_host(fleet):
    project, batch, hosts = fleet
    sim = Simulation(hosts)
    sim.run_until_done(WorkUnit.objects.filter(batch=batch), max_rounds=300)

    workunits = WorkUnit.objects.filter(batch=batch)
    assert workunits.filter(assimilate_state=AssimilateState.DONE, error_mask=0).count() == 100
    outputs = AssimilatedOutput.objects.filter(batch=batch)
    assert outputs.count() == 100
    assert all(o.output == square(o.input) for o in outputs)
    batch.refresh_from_db()
    assert (batch.n_assimilated, batch.n_errored, batch.state) == (100, 0, "completed")

    cheater, silent = hosts[3].host, hosts[4].host
    assert not CreditEntry.objects.filter(host=cheater).exists()
    cheater.refresh_from_db()
    assert cheater.total_credit == 0
    assert cheater.n_invalid > 0
    app = project.apps.get()
    assert HostApp.objects.get(host=cheater, app=app).daily_quota < project.daily_quota_per_core
    assert HostApp.objects.get(host=cheater, app=app).consecutive_valid == 0

    timed_out = Replica.objects.filter(host=silent, outcome=Outcome.NO_REPLY)
    assert timed_out.exists()
    for r in timed_out:
        # Each of the silent host's replicas was reissued and its work unit still validated.
        assert r.workunit.replicas.filter(validate_state=ValidateState.VALID).count() >= 2
    assert HostApp.objects.get(host=silent, app=app).daily_quota < project.daily_quota_per_core


def test_honest_hosts_are_credited_once_per_valid_replica(fleet):
    _, batch, hosts = fleet
    Simulation(hosts).run_until_done(WorkUnit.objects.filter(batch=batch), max_rounds=300)
    valid = Replica.objects.filter(workunit__batch=batch, validate_state=ValidateState.VALID)
    assert CreditEntry.objects.count() == valid.count()
    for sim in hosts[:3]:
        sim.host.refresh_from_db()
        entries = CreditEntry.objects.filter(host=sim.host)
        assert sim.host.total_credit == pytest.approx(sum(e.amount for e in entries))
        assert sim.host.total_credit > 0
