from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction

import pytest

from compute import submission, validation
from compute.models import CreditEntry, Replica, WorkUnit
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.states import AssimilateState, Outcome, ValidateState


def report(project, host_factory, outputs, cpu_time=10.0):
    """One host per output leases a replica and returns that output."""
    hosts = []
    for output in outputs:
        host = host_factory(project)
        (a,) = lease_replicas(host, 1)
        # Leased long ago, so wall time does not limit the claim.
        Replica.objects.filter(id=a.replica_id).update(sent_at=a.deadline - timedelta(days=1))
        assert record_result(host, a.replica_id, a.lease_token, output, cpu_time).accepted
        hosts.append(host)
    return hosts


def workunit(project, n_results=2, **policy):
    project.min_quorum = policy.pop("min_quorum", 2)
    project.target_nresults = max(project.min_quorum, n_results)
    for k, v in policy.items():
        setattr(project, k, v)
    project.save()
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="b")
    return WorkUnit.objects.get()


def test_agreeing_results_make_a_canonical_replica_and_earn_credit(project_factory, host_factory):
    project = project_factory()
    wu = workunit(project)
    report(project, host_factory, [{"y": 9}, {"y": 9}])
    verdict = validation.validate_workunit(wu.id)
    assert verdict.outcome == "valid"
    assert len(verdict.valid) == 2
    wu.refresh_from_db()
    assert wu.canonical_replica_id in verdict.valid
    assert wu.assimilate_state == AssimilateState.READY
    assert not wu.need_validate
    assert CreditEntry.objects.filter(workunit_id=wu.id).count() == 2
    assert all(r.granted_credit == wu.canonical_credit > 0 for r in wu.replicas.all())


def test_disagreeing_results_are_inconclusive_and_ask_for_another_replica(
    project_factory, host_factory
):
    project = project_factory()
    wu = workunit(project)
    report(project, host_factory, [{"y": 9}, {"y": 10}])
    assert validation.validate_workunit(wu.id).outcome == "inconclusive"
    wu.refresh_from_db()
    assert wu.target_nresults == 3
    assert wu.transition_time is not None
    assert wu.replicas.filter(validate_state=ValidateState.INCONCLUSIVE).count() == 2
    assert not CreditEntry.objects.exists()


def test_a_third_result_settles_an_inconclusive_pair(project_factory, host_factory):
    from compute import transitioner

    project = project_factory()
    wu = workunit(project)
    honest, cheat = report(project, host_factory, [{"y": 9}, {"y": 10}])
    validation.validate_workunit(wu.id)
    transitioner.transition_workunit(wu.id)
    report(project, host_factory, [{"y": 9}])
    verdict = validation.validate_workunit(wu.id)
    assert verdict.outcome == "valid"
    assert Replica.objects.get(workunit=wu, host=cheat).validate_state == ValidateState.INVALID
    assert Replica.objects.get(workunit=wu, host=honest).validate_state == ValidateState.VALID
    assert not CreditEntry.objects.filter(host=cheat).exists()


def test_a_strict_majority_of_the_quorum_is_enough(project_factory, host_factory):
    project = project_factory()
    wu = workunit(project, n_results=3, min_quorum=3)
    report(project, host_factory, [{"y": 9}, {"y": 1}, {"y": 9}])
    verdict = validation.validate_workunit(wu.id)
    assert verdict.outcome == "valid"
    assert len(verdict.valid) == 2
    assert len(verdict.invalid) == 1


def test_validation_waits_for_the_quorum(project_factory, host_factory):
    project = project_factory()
    wu = workunit(project)
    report(project, host_factory, [{"y": 9}])
    WorkUnit.objects.filter(id=wu.id).update(need_validate=True)
    assert validation.validate_workunit(wu.id).outcome == "waiting for quorum"


def test_validating_twice_changes_nothing(project_factory, host_factory):
    project = project_factory()
    wu = workunit(project)
    report(project, host_factory, [{"y": 9}, {"y": 9}])
    validation.validate_workunit(wu.id)
    assert validation.validate_workunit(wu.id).outcome == "nothing to do"
    WorkUnit.objects.filter(id=wu.id).update(need_validate=True)
    validation.validate_workunit(wu.id)
    assert CreditEntry.objects.count() == 2


def test_the_ledger_refuses_a_second_credit_for_a_replica(project_factory, host_factory):
    project = project_factory()
    wu = workunit(project)
    report(project, host_factory, [{"y": 9}, {"y": 9}])
    validation.validate_workunit(wu.id)
    entry = CreditEntry.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditEntry.objects.create(
            replica_id=entry.replica_id,
            workunit_id=wu.id,
            project=project,
            amount=1.0,
            granted_at=entry.granted_at,
        )


def test_numeric_comparator_accepts_differences_within_the_tolerance(project_factory, host_factory):
    project = project_factory(app_kwargs={"comparator": "numeric", "tolerance": 1e-6})
    wu = workunit(project)
    report(project, host_factory, [{"y": 9.0}, {"y": 9.0000001}])
    assert validation.validate_workunit(wu.id).outcome == "valid"


def test_numeric_comparator_rejects_differences_beyond_the_tolerance(project_factory, host_factory):
    project = project_factory(app_kwargs={"comparator": "numeric", "tolerance": 1e-9})
    wu = workunit(project)
    report(project, host_factory, [{"y": 9.0}, {"y": 9.001}])
    assert validation.validate_workunit(wu.id).outcome == "inconclusive"


@pytest.mark.parametrize(
    ("outputs", "outcome"),
    [
        ([{"y": 10**400}, {"y": 9.0}], "inconclusive"),
        ([{"y": [1.0, 10**400]}, {"y": [1.0, 10**400 + 1]}], "inconclusive"),
        ([{"y": 10**400}, {"y": 10**400}], "valid"),
    ],
    ids=["against-a-float", "against-another-integer", "against-itself"],
)
def test_numeric_comparator_weighs_an_integer_beyond_a_double(
    project_factory, host_factory, outputs, outcome, caplog
):
    project = project_factory(app_kwargs={"comparator": "numeric", "tolerance": 1e-6})
    wu = workunit(project)
    report(project, host_factory, outputs)
    assert validation.validate_workunit(wu.id).outcome == outcome
    # Compared, not a comparator failure treated as disagreement.
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_custom_comparator_decides_agreement(project_factory, host_factory):
    project = project_factory(
        app_kwargs={"comparator": "custom", "comparator_path": "tests.support.same_parity"}
    )
    wu = workunit(project)
    report(project, host_factory, [{"y": 9}, {"y": 11}])
    assert validation.validate_workunit(wu.id).outcome == "valid"


def test_granted_credit_is_the_minimum_claim_by_default(project_factory, host_factory):
    project = project_factory(max_credit_per_replica=0)
    wu = workunit(project)
    slow, fast = report(project, host_factory, [{"y": 9}, {"y": 9}])
    Replica.objects.filter(host=fast).update(claimed_credit=1.0)
    Replica.objects.filter(host=slow).update(claimed_credit=3.0)
    validation.validate_workunit(wu.id)
    assert set(CreditEntry.objects.values_list("amount", flat=True)) == {1.0}


def test_granted_credit_can_be_the_average_claim(project_factory, host_factory):
    project = project_factory(max_credit_per_replica=0, credit_policy="avg")
    wu = workunit(project)
    a, b = report(project, host_factory, [{"y": 9}, {"y": 9}])
    Replica.objects.filter(host=a).update(claimed_credit=1.0)
    Replica.objects.filter(host=b).update(claimed_credit=3.0)
    validation.validate_workunit(wu.id)
    assert set(CreditEntry.objects.values_list("amount", flat=True)) == {2.0}


def test_inflated_claims_are_capped_by_the_project(project_factory, host_factory):
    project = project_factory(max_credit_per_replica=5.0, credit_policy="avg")
    wu = workunit(project)
    report(project, host_factory, [{"y": 9}, {"y": 9}], cpu_time=10**9)
    validation.validate_workunit(wu.id)
    assert set(CreditEntry.objects.values_list("amount", flat=True)) == {5.0}


def test_claims_count_no_more_cpu_time_than_wall_time(project_factory, host_factory):
    project = project_factory(max_credit_per_replica=0)
    wu = workunit(project)
    hosts = report(project, host_factory, [{"y": 9}, {"y": 9}], cpu_time=1000.0)
    replicas = list(Replica.objects.filter(workunit=wu, host__in=hosts))
    for r in replicas:
        # 1000 s of CPU claimed, but only 100 s passed between lease and upload.
        Replica.objects.filter(id=r.id).update(sent_at=r.received_at - timedelta(seconds=100))
    validation.validate_workunit(wu.id)
    claim = Replica.objects.filter(workunit=wu).first().claimed_credit
    assert CreditEntry.objects.first().amount == pytest.approx(claim / 10)


def test_a_late_replica_is_checked_against_the_canonical_one(project_factory, host_factory):
    project = project_factory()
    wu = workunit(project, n_results=3)
    late_host = host_factory(project)
    (late,) = lease_replicas(late_host, 1)
    report(project, host_factory, [{"y": 9}, {"y": 9}])
    validation.validate_workunit(wu.id)
    assert record_result(
        late_host, late.replica_id, late.lease_token, {"y": 9}, 1.0
    ).validation_queued
    assert validation.validate_workunit(wu.id).outcome == "checked late"
    r = Replica.objects.get(id=late.replica_id)
    assert r.validate_state == ValidateState.VALID
    wu.refresh_from_db()
    assert CreditEntry.objects.get(replica_id=r.id).amount == wu.canonical_credit


def test_a_wrong_late_replica_is_invalid(project_factory, host_factory):
    project = project_factory()
    wu = workunit(project, n_results=3)
    late_host = host_factory(project)
    (late,) = lease_replicas(late_host, 1)
    report(project, host_factory, [{"y": 9}, {"y": 9}])
    validation.validate_workunit(wu.id)
    record_result(late_host, late.replica_id, late.lease_token, {"y": 8}, 1.0)
    validation.validate_workunit(wu.id)
    assert Replica.objects.get(id=late.replica_id).validate_state == ValidateState.INVALID
    assert not CreditEntry.objects.filter(replica_id=late.replica_id).exists()


def test_a_failing_spot_check_marks_the_result_invalid_and_replicates(
    project_factory, host_factory
):
    from compute.states import Replication

    project = project_factory(app_kwargs={"adaptive_replication": True})
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="b")
    wu = WorkUnit.objects.get()
    host = host_factory(project)
    (a,) = lease_replicas(host, 1)
    WorkUnit.objects.filter(id=wu.id).update(
        replication=Replication.UNREPLICATED, spot_check=True, min_quorum=1, target_nresults=1
    )
    record_result(host, a.replica_id, a.lease_token, {"y": 10}, 1.0)
    assert validation.validate_workunit(wu.id).outcome == "spot check failed"
    wu.refresh_from_db()
    assert (wu.replication, wu.min_quorum, wu.target_nresults) == (Replication.ESCALATED, 2, 2)
    assert Replica.objects.get(id=a.replica_id).validate_state == ValidateState.INVALID
    assert not CreditEntry.objects.exists()


def test_a_passing_spot_check_accepts_the_single_result(project_factory, host_factory):
    from compute.states import Replication

    project = project_factory(app_kwargs={"adaptive_replication": True})
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="b")
    wu = WorkUnit.objects.get()
    host = host_factory(project)
    (a,) = lease_replicas(host, 1)
    WorkUnit.objects.filter(id=wu.id).update(
        replication=Replication.UNREPLICATED, spot_check=True, min_quorum=1, target_nresults=1
    )
    record_result(host, a.replica_id, a.lease_token, {"y": 9}, 1.0)
    assert validation.validate_workunit(wu.id).outcome == "valid"
    assert Replica.objects.get(id=a.replica_id).outcome == Outcome.SUCCESS
