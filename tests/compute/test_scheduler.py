from __future__ import annotations

import random

from django.utils import timezone

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from compute import feeder, submission
from compute.dispatch.ops import Unavailable
from compute.models import HostApp, Replica, Volunteer, WorkUnit
from compute.scheduler import ProjectShare, allocate_slots, lease_replicas
from compute.states import Replication, ServerState


@pytest.fixture
def project(project_factory):
    return project_factory(min_quorum=2, target_nresults=2)


def submit(project, n=10, **kwargs):
    return submission.create_batch(
        project, project.apps.get(), [{"x": i} for i in range(n)], name="b", **kwargs
    )


def test_a_host_gets_distinct_work_units_with_a_lease_token_and_deadline(project, host_factory):
    submit(project)
    host = host_factory(project, cores=2)
    assignments = lease_replicas(host, 4)
    assert len(assignments) == 4
    assert len({a.workunit_id for a in assignments}) == 4
    for a in assignments:
        r = Replica.objects.get(id=a.replica_id)
        assert (r.server_state, r.host_id, r.user_id) == (
            ServerState.IN_PROGRESS,
            host.id,
            host.user_id,
        )
        assert r.lease_token == a.lease_token
        assert len(a.lease_token) == 32
        assert a.deadline == r.deadline
        assert a.input == r.workunit.input
        assert a.kernel_sha256
        assert a.kernel_url.endswith(".js")


def test_the_prefetch_limit_caps_replicas_in_flight(project, host_factory, settings):
    settings.COMPUTE = {**settings.COMPUTE, "PREFETCH_PER_CORE": 2}
    submit(project, n=20)
    host = host_factory(project, cores=1)
    assert len(lease_replicas(host, 10)) == 2
    assert lease_replicas(host, 10) == []


def test_a_host_never_gets_two_replicas_of_one_work_unit(project, host_factory):
    submit(project, n=3)
    host = host_factory(project, cores=8)
    leased = lease_replicas(host, 16)
    assert len(leased) == 3
    assert len({a.workunit_id for a in leased}) == 3
    # The other replicas went back to the cache for other hosts.
    other = host_factory(project, cores=8)
    assert {a.workunit_id for a in lease_replicas(other, 16)} == {a.workunit_id for a in leased}


def test_two_hosts_of_one_user_never_share_a_work_unit(project, host_factory, user_factory):
    submit(project, n=3)
    user = user_factory()
    first = host_factory(project, user=user, cores=8)
    second = host_factory(project, user=user, cores=8)
    assert len(lease_replicas(first, 16)) == 3
    assert lease_replicas(second, 16) == []


def test_the_database_refuses_a_second_replica_per_host_even_if_the_cache_is_bypassed(
    project, host_factory
):
    from django.db import IntegrityError

    submit(project, n=1)
    host = host_factory(project)
    a, b = Replica.objects.order_by("id")
    Replica.objects.filter(id=a.id).update(host=host)
    with pytest.raises(IntegrityError):
        Replica.objects.filter(id=b.id).update(host=host)


def test_hosts_that_do_not_meet_the_requirements_get_nothing(project_factory, host_factory):
    project = project_factory(app_kwargs={"needs_wasm": True, "min_cores": 2})
    submit(project)
    assert lease_replicas(host_factory(project, has_wasm=False, cores=4), 2) == []
    assert lease_replicas(host_factory(project, has_wasm=True, cores=1), 2) == []
    assert len(lease_replicas(host_factory(project, has_wasm=True, cores=2), 2)) == 2


def test_homogeneous_redundancy_keeps_a_work_unit_on_one_platform_class(
    project_factory, host_factory
):
    project = project_factory(app_kwargs={"homogeneous_redundancy": True})
    submit(project, n=2)
    chrome = host_factory(project, platform_class="blink-x86_64", cores=8)
    firefox = host_factory(project, platform_class="gecko-x86_64", cores=8)
    chrome2 = host_factory(project, platform_class="blink-x86_64", cores=8)
    first = lease_replicas(chrome, 1)
    assert WorkUnit.objects.get(id=first[0].workunit_id).hr_class == "blink-x86_64"
    got = lease_replicas(firefox, 8)
    assert first[0].workunit_id not in {a.workunit_id for a in got}
    assert first[0].workunit_id in {a.workunit_id for a in lease_replicas(chrome2, 8)}


def test_the_daily_quota_limits_jobs_per_core(project_factory, host_factory):
    project = project_factory(daily_quota_per_core=3, min_quorum=1, target_nresults=1)
    submit(project, n=20)
    host = host_factory(project, cores=1)
    from tests.simulation import SimHost, Simulation

    sim = Simulation([SimHost(host)])
    for _ in range(5):
        sim.step(request=2)
    assert Replica.objects.filter(host=host).count() == 3
    assert HostApp.objects.get(host=host).jobs_today == 3


def test_higher_priority_work_goes_first(project, host_factory):
    submit(project, n=5, priority=0)
    urgent = submit(project, n=2, priority=5)
    leased = lease_replicas(host_factory(project, cores=1), 2)
    assert {WorkUnit.objects.get(id=a.workunit_id).batch_id for a in leased} == {urgent.id}


def test_banned_hosts_and_users_get_no_work(project, host_factory):
    submit(project)
    banned_host = host_factory(project, banned=True)
    assert lease_replicas(banned_host, 2) == []
    host = host_factory(project)
    Volunteer.objects.create(user=host.user, banned=True)
    assert lease_replicas(host, 2) == []


def test_a_paused_or_finishing_membership_gets_no_new_work(project, host_factory):
    submit(project)
    host = host_factory(project)
    host.user.memberships.update(no_more_work=True)
    assert lease_replicas(host, 2) == []
    host.user.memberships.update(no_more_work=False, state="paused")
    assert lease_replicas(host, 2) == []


def test_an_anonymous_host_computes_for_the_project_it_names(project, host_factory):
    submit(project)
    host = host_factory(user=None)
    assert lease_replicas(host, 2) == []
    assert len(lease_replicas(host, 2, project_ids=[project.id])) == 2


def test_fair_share_splits_work_by_resource_share(project_factory, host_factory):
    a, b = project_factory(), project_factory()
    submit(a, n=20)
    submit(b, n=20)
    host = host_factory(a, b, cores=8)
    host.user.memberships.filter(project=a).update(resource_share=300)
    leased = lease_replicas(host, 8)
    by_project = [WorkUnit.objects.get(id=x.workunit_id).project_id for x in leased]
    assert by_project.count(a.id) == 6
    assert by_project.count(b.id) == 2


def test_a_project_without_work_leaves_its_share_to_the_others(project_factory, host_factory):
    a, b = project_factory(), project_factory()
    submit(b, n=20)
    host = host_factory(a, b, cores=4)
    assert len(lease_replicas(host, 4)) == 4


def test_allocate_slots_favours_the_project_behind_on_credit():
    shares = [ProjectShare(1, 100, 90.0), ProjectShare(2, 100, 10.0)]
    assert allocate_slots(1, shares) == [(2, 1), (1, 0)]
    assert sorted(allocate_slots(4, shares)) == [(1, 2), (2, 2)]
    assert allocate_slots(0, shares) == []


def test_the_cache_rebuilds_from_the_database_after_it_is_lost(project, host_factory):
    submit(project, n=4)
    feeder.refill_all()
    feeder.get_queue().clear()
    assert len(lease_replicas(host_factory(project, cores=4), 4)) == 4


def test_stale_cache_entries_are_skipped(project, host_factory):
    submit(project, n=2)
    feeder.refill_all()
    Replica.objects.update(server_state=ServerState.OVER, outcome="didnt_need")
    assert lease_replicas(host_factory(project), 4) == []


def test_adaptive_replication_sends_untrusted_hosts_the_full_quorum(project_factory, host_factory):
    project = project_factory(app_kwargs={"adaptive_replication": True})
    submit(project, n=1)
    wu = WorkUnit.objects.get()
    assert (wu.min_quorum, wu.target_nresults, wu.replication) == (
        1,
        1,
        Replication.ADAPTIVE_PENDING,
    )
    lease_replicas(host_factory(project), 1, rng=random.Random(1))
    wu.refresh_from_db()
    assert (wu.min_quorum, wu.target_nresults, wu.replication) == (2, 2, Replication.ESCALATED)
    assert wu.transition_time is not None


def test_adaptive_replication_lets_a_trusted_host_compute_alone(project_factory, host_factory):
    project = project_factory(app_kwargs={"adaptive_replication": True, "spot_check_rate": 0})
    submit(project, n=1)
    host = host_factory(project)
    app = project.apps.get()
    HostApp.objects.create(
        host=host, app=app, consecutive_valid=1000, daily_quota=100, quota_day=timezone.now().date()
    )
    lease_replicas(host, 1, rng=random.Random(1))
    wu = WorkUnit.objects.get()
    assert (wu.min_quorum, wu.replication, wu.spot_check) == (1, Replication.UNREPLICATED, False)


def test_stale_entries_from_another_process_do_not_starve_a_host(project, host_factory):
    """Entries leased elsewhere are skipped and the next ones popped in the same request."""
    submit(project, n=12)
    feeder.refill_all()
    # Another process leased the first eight replicas behind this cache's back.
    first = list(Replica.objects.filter(ordinal=0).order_by("id").values_list("id", flat=True)[:8])
    Replica.objects.filter(id__in=first).update(server_state=ServerState.OVER, outcome="didnt_need")
    assert len(lease_replicas(host_factory(project, cores=2), 4)) == 4


def lease_all(host, want):
    leased = []
    while got := lease_replicas(host, want):
        leased += got
    return leased


@pytest.mark.parametrize("want", [1, 4])
def test_a_lone_host_is_not_starved_by_the_partners_of_its_own_work_units(
    project, host_factory, settings, want
):
    """The cache's head fills with the second replicas of the work units the host computes,
    which only another host may take; the host still gets every other unsent work unit."""
    settings.COMPUTE = {**settings.COMPUTE, "PREFETCH_PER_CORE": 1000}
    submit(project, n=200)
    host = host_factory(project, cores=1)
    leased = lease_all(host, want)
    assert sorted(a.workunit_id for a in leased) == sorted(
        WorkUnit.objects.values_list("id", flat=True)
    )
    # A later batch, priority first, behind the partners the feeder queued.
    second = submit(project, n=40, priority=5)
    feeder.refill_all()
    leased = lease_all(host, want)
    assert {a.workunit_id for a in leased} == set(second.workunits.values_list("id", flat=True))
    assert Replica.objects.filter(server_state=ServerState.UNSENT).count() == 240


def test_a_cache_whose_head_is_stale_still_serves_the_work_behind_it(project_factory, host_factory):
    """More stale entries than a request's rounds pop (replicas leased behind the cache's
    back): the request still gets the unsent replica, not "no work"."""
    project = project_factory(min_quorum=1, target_nresults=1)
    submit(project, n=100)
    feeder.refill_all()
    first = list(Replica.objects.order_by("id").values_list("id", flat=True)[:90])
    Replica.objects.filter(id__in=first).update(server_state=ServerState.OVER, outcome="didnt_need")
    assert len(lease_replicas(host_factory(project, cores=1), 1)) == 1


def test_a_host_that_holds_everything_in_the_cache_gets_nothing_twice(
    project, host_factory, user_factory, settings
):
    """Looking past the cache keeps the rules: no second replica of a work unit for the host,
    nor for another host of its user."""
    settings.COMPUTE = {**settings.COMPUTE, "PREFETCH_PER_CORE": 1000}
    submit(project, n=60)
    user = user_factory()
    first = host_factory(project, cores=1, user=user)
    assert len(lease_all(first, 2)) == 60
    second = host_factory(project, cores=1, user=user)
    assert lease_replicas(second, 2) == []
    other = host_factory(project, cores=1)
    assert len(lease_all(other, 2)) == 60
    assert not Replica.objects.filter(server_state=ServerState.UNSENT).exists()


class FailingCache(feeder.LocalReadyQueue):
    """The dispatch cache as Redis behaves when it goes away mid-request: once ``down``, every
    call raises redis-py's connection error."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    def pop(self, app_id, count):
        self._check()
        return super().pop(app_id, count)

    def push(self, app_id, entries):
        self._check()
        super().push(app_id, entries)


def test_replicas_leased_before_the_cache_fails_are_handed_out_not_lost(
    project, host_factory, monkeypatch
):
    """The lease commits, then returning the extra entries to the cache fails (Redis gone):
    the host still gets what was leased to it, rather than an error while the replicas stay
    leased to it until their deadline."""
    submit(project, n=8)
    cache = FailingCache()
    monkeypatch.setattr(feeder, "get_queue", lambda: cache)
    feeder.refill(project.apps.get().id, queue=cache)
    host = host_factory(project, cores=4)
    # The cache goes away once the first lease has committed.
    real_pop = cache.pop

    def pop_then_fail(app_id, count):
        entries = real_pop(app_id, count)
        cache.down = True
        return entries

    cache.pop = pop_then_fail
    leased = lease_replicas(host, 2)

    assert len(leased) == 2
    in_progress = Replica.objects.filter(host=host, server_state=ServerState.IN_PROGRESS)
    assert sorted(in_progress.values_list("id", flat=True)) == sorted(a.replica_id for a in leased)


def test_a_cache_that_fails_before_anything_is_leased_fails_the_request(
    project, host_factory, monkeypatch
):
    submit(project, n=4)
    cache = FailingCache()
    cache.down = True
    monkeypatch.setattr(feeder, "get_queue", lambda: cache)
    host = host_factory(project, cores=4)
    with pytest.raises(Unavailable):
        lease_replicas(host, 2)
    assert not Replica.objects.filter(host=host).exists()
