"""Hosts' app records (compute_hostapp) are written by a flush's leases (jobs counted against
the quota) and by validations, error reports and timeouts (the streak and the quota), in
several processes at once. Each statement locks the records it writes in the order of their
ids, so two of them that share hosts wait for each other instead of deadlocking: a deadlock
costs PostgreSQL's ``deadlock_timeout`` (a second) before one of them is refused, and the
flush that waited answered every socket it held a second late.

Each test holds the first record (in id order) from another connection while the statement
runs, and checks that the statement, waiting for it, holds none of the others: a statement
that locked in another order (the table's physical order, where the first record was
rewritten last) would already hold the second one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

import psycopg
import pytest

from compute import reliability, submission
from compute.dispatch import dialect, leasing
from compute.models import HostApp, Replica
from compute.states import ServerState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite serialises writers)")


def connect() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        dbname=s["NAME"],
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
    )


@pytest.fixture
def records(project_factory, host_factory):
    """Two hosts' records of one app, the first (by id) stored after the second."""
    project = project_factory()
    app = project.apps.get()
    hosts = [host_factory(project) for _ in range(2)]
    today = timezone.now().date()
    rows = [HostApp.objects.create(host=h, app=app, daily_quota=8, quota_day=today) for h in hosts]
    # An update writes a new version of the row after the other one.
    HostApp.objects.filter(id=rows[0].id).update(jobs_today=1)
    return project, app, hosts, rows


def count_jobs(project, app, hosts) -> Callable[[], None]:
    """The flush's count of leased jobs, for one replica leased to each host."""
    submission.create_batch(project, app, [{"x": 1}, {"x": 2}], name="b")
    now = timezone.now()
    replicas = list(Replica.objects.filter(workunit__app=app).order_by("id")[:2])
    for replica, host, token in zip(replicas, hosts, ("t1", "t2"), strict=True):
        Replica.objects.filter(id=replica.id).update(
            host=host,
            user=host.user,
            sent_at=now,
            lease_token=token,
            server_state=ServerState.IN_PROGRESS,
        )

    def run() -> None:
        sql = dialect.current()
        ids, id_params = sql.ids([r.id for r in replicas])
        tokens, token_params = sql.texts(["t1", "t2"])
        sql.execute(
            sql.format(leasing.COUNT_JOBS, ids=ids, tokens=tokens),
            [*id_params, now, *token_params, now.date(), now.date()],
        )

    return run


STATEMENTS = {
    "a validation's streaks and quotas": lambda project, app, hosts: (
        lambda: reliability.record_valid([(h.id, app.id) for h in hosts], {app.id: 8})
    ),
    "failures' streaks and quotas": lambda project, app, hosts: (
        lambda: reliability.record_failure([(h.id, app.id) for h in hosts])
    ),
    "a flush's jobs counted": count_jobs,
}


@pytest.mark.parametrize("statement", STATEMENTS)
def test_waiting_for_the_first_record_it_holds_none_of_the_others(statement, records):
    project, app, hosts, rows = records
    run = STATEMENTS[statement](project, app, hosts)
    first, second = rows
    holder, probe = connect(), connect()
    failures: list[BaseException] = []
    finished = threading.Event()

    def write() -> None:
        try:
            with transaction.atomic():
                run()
        except BaseException as e:  # reported by the test
            failures.append(e)
        finally:
            connection.close()
            finished.set()

    try:
        holder.execute("SELECT id FROM compute_hostapp WHERE id = %s FOR UPDATE", [first.id])
        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 10
        while not waiting_for_a_row(probe):
            assert not finished.is_set(), f"the statement did not wait: {failures}"
            assert time.monotonic() < deadline, "the statement never waited for the record"
            time.sleep(0.02)
        try:
            probe.execute(
                "SELECT id FROM compute_hostapp WHERE id = %s FOR UPDATE NOWAIT", [second.id]
            )
        except psycopg.errors.LockNotAvailable:
            pytest.fail("waiting for the first record, the statement held the second")
        finally:
            probe.rollback()
    finally:
        holder.rollback()
        finished.wait(10)
        holder.close()
        probe.close()
    assert failures == []
    assert finished.is_set()


def waiting_for_a_row(probe: psycopg.Connection) -> bool:
    """Is a backend of this database waiting for a lock held by another transaction?"""
    row = probe.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    probe.rollback()
    return row[0] > 0
