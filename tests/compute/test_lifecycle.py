from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import pytest

from compute import lifecycle, submission
from compute.models import Replica, WorkUnit
from compute.states import REPLICA_TRANSITIONS, AssimilateState, ServerState


@pytest.fixture
def replica(project_factory, host_factory):
    project = project_factory(min_quorum=1, target_nresults=1)
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="one")
    return Replica.objects.get(), host_factory(project)


def states(replica_id: int) -> tuple[str, str, str]:
    r = Replica.objects.get(id=replica_id)
    return (r.server_state, r.outcome, r.validate_state)


def lease(replica, host, token="t" * 32, minutes=10):
    now = timezone.now()
    return lifecycle.lease(
        [replica.id],
        host_id=host.id,
        user_id=host.user_id,
        app_version_id=None,
        token=token,
        sent_at=now,
        deadline=now + timedelta(minutes=minutes),
    )


def test_every_transition_leaves_a_state_and_enters_a_different_one():
    for name, (source, target) in REPLICA_TRANSITIONS.items():
        assert source != target, name


def test_lease_moves_an_unsent_replica_to_in_progress(replica):
    r, host = replica
    assert lease(r, host) == 1
    assert states(r.id) == REPLICA_TRANSITIONS["lease"][1]
    assert Replica.objects.get(id=r.id).host_id == host.id


def test_a_leased_replica_cannot_be_leased_again(replica, host_factory):
    r, host = replica
    lease(r, host)
    assert lease(r, host_factory()) == 0
    assert Replica.objects.get(id=r.id).host_id == host.id


def test_success_needs_the_right_host_and_token(replica, host_factory):
    r, host = replica
    lease(r, host, token="a" * 32)
    now = timezone.now()
    kwargs = {"output": {"y": 9}, "cpu_time": 1.0, "claimed_credit": 1.0, "now": now}
    assert not lifecycle.report_success(r.id, host_id=host_factory().id, token="a" * 32, **kwargs)
    assert not lifecycle.report_success(r.id, host_id=host.id, token="b" * 32, **kwargs)
    assert states(r.id)[0] == ServerState.IN_PROGRESS
    assert lifecycle.report_success(r.id, host_id=host.id, token="a" * 32, **kwargs)
    assert states(r.id) == REPLICA_TRANSITIONS["report_success"][1]


def test_a_second_success_for_the_same_replica_changes_nothing(replica):
    r, host = replica
    lease(r, host)
    now = timezone.now()
    kw = {"host_id": host.id, "token": "t" * 32, "cpu_time": 1.0, "claimed_credit": 1.0, "now": now}
    assert lifecycle.report_success(r.id, output={"y": 9}, **kw)
    assert not lifecycle.report_success(r.id, output={"y": 10}, **kw)
    assert Replica.objects.get(id=r.id).output == {"y": 9}


def test_a_result_after_the_deadline_is_refused(replica):
    r, host = replica
    lease(r, host, minutes=1)
    later = timezone.now() + timedelta(minutes=2)
    assert not lifecycle.report_success(
        r.id, host_id=host.id, token="t" * 32, output={}, cpu_time=1, claimed_credit=1, now=later
    )


def test_error_moves_in_progress_to_client_error(replica):
    r, host = replica
    lease(r, host)
    assert lifecycle.report_error(
        r.id, host_id=host.id, token="t" * 32, reason="oom", now=timezone.now()
    )
    assert states(r.id) == REPLICA_TRANSITIONS["report_error"][1]
    assert Replica.objects.get(id=r.id).error_reason == "oom"


def test_time_out_only_touches_replicas_past_their_deadline(replica):
    r, host = replica
    lease(r, host, minutes=5)
    assert lifecycle.time_out([r.id], timezone.now()) == 0
    assert lifecycle.time_out([r.id], timezone.now() + timedelta(minutes=6)) == 1
    assert states(r.id) == REPLICA_TRANSITIONS["time_out"][1]


def test_not_needed_only_touches_unsent_replicas(replica):
    r, _ = replica
    assert lifecycle.not_needed([r.workunit_id]) == 1
    assert states(r.id) == REPLICA_TRANSITIONS["not_needed"][1]


def test_abort_returns_the_hosts_to_tell(replica):
    r, host = replica
    lease(r, host)
    assert lifecycle.abort_in_progress([r.workunit_id]) == [(r.id, host.id)]
    assert states(r.id) == REPLICA_TRANSITIONS["abort"][1]


def test_validate_states_move_only_from_init_or_inconclusive(replica):
    r, host = replica
    lease(r, host)
    lifecycle.report_success(
        r.id,
        host_id=host.id,
        token="t" * 32,
        output={},
        cpu_time=1,
        claimed_credit=1,
        now=timezone.now(),
    )
    assert lifecycle.set_validate_state([r.id], "validate_inconclusive") == 1
    assert lifecycle.set_validate_state([r.id], "validate_valid") == 0
    assert lifecycle.set_validate_state([r.id], "resolve_valid") == 1
    assert lifecycle.set_validate_state([r.id], "resolve_invalid") == 0
    assert states(r.id) == REPLICA_TRANSITIONS["resolve_valid"][1]


def test_assimilate_state_moves_in_order(replica):
    r, _ = replica
    wu_id = r.workunit_id
    assert not lifecycle.move_assimilate_state(wu_id, "done")
    assert lifecycle.move_assimilate_state(wu_id, "ready")
    assert not lifecycle.move_assimilate_state(wu_id, "ready")
    assert lifecycle.move_assimilate_state(wu_id, "done")
    assert WorkUnit.objects.get(id=wu_id).assimilate_state == AssimilateState.DONE


def test_flag_need_validate_waits_for_the_quorum(project_factory, host_factory):
    project = project_factory(min_quorum=2, target_nresults=2)
    submission.create_batch(project, project.apps.get(), [{"x": 3}], name="one")
    wu = WorkUnit.objects.get()
    a, b = wu.replicas.order_by("id")
    now = timezone.now()
    for r, host in ((a, host_factory(project)), (b, host_factory(project))):
        lifecycle.lease(
            [r.id],
            host_id=host.id,
            user_id=host.user_id,
            app_version_id=None,
            token="t" * 32,
            sent_at=now,
            deadline=now + timedelta(hours=1),
        )
        r.host = host
    lifecycle.report_success(
        a.id,
        host_id=a.host.id,
        token="t" * 32,
        output={"y": 9},
        cpu_time=1,
        claimed_credit=1,
        now=now,
    )
    assert not lifecycle.flag_need_validate(wu.id)
    lifecycle.report_success(
        b.id,
        host_id=b.host.id,
        token="t" * 32,
        output={"y": 9},
        cpu_time=1,
        claimed_credit=1,
        now=now,
    )
    assert lifecycle.flag_need_validate(wu.id)
    assert not lifecycle.flag_need_validate(wu.id)
    assert WorkUnit.objects.get(id=wu.id).need_validate
