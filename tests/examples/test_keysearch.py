from __future__ import annotations

import hashlib

import pytest

from compute import assimilation, submission, validation
from compute.examples import keysearch
from compute.models import AssimilatedOutput, Replica, WorkUnit
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.states import BatchState, ErrorMask, ServerState

PREFIX = "socialgrid:"


def search(key: int, start: int, stop: int, prefix: str = PREFIX) -> dict:
    return {
        "prefix": prefix,
        "target": keysearch.hash_key(prefix, key),
        "start": start,
        "stop": stop,
    }


def test_the_hash_is_sha256_of_the_prefix_and_the_decimal_key():
    assert keysearch.hash_key("p:", 42) == hashlib.sha256(b"p:42").hexdigest()


def test_it_finds_the_key_and_counts_the_keys_it_hashed():
    assert keysearch.run(search(1234, 1000, 2000)) == {"found": 1234, "checked": 235}


def test_it_reports_nothing_found_after_checking_the_whole_range():
    assert keysearch.run(search(5, 1000, 2000)) == {"found": None, "checked": 1000}


def test_it_hashes_the_prefix_as_utf8():
    assert keysearch.run(search(7, 0, 10, prefix="clé🔑")) == {"found": 7, "checked": 8}


@pytest.mark.parametrize(
    "data",
    [
        {**search(1, 0, 10), "target": "ABC"},
        {**search(1, 0, 10), "target": "A" * 64},
        search(1, 10, 10),
        search(1, -1, 10),
        search(1, 0, keysearch.MAX_KEY + 1),
        {**search(1, 0, 10), "start": 0.0},
    ],
    ids=["short-target", "uppercase-target", "empty", "negative", "too-large", "float"],
)
def test_it_rejects_bad_inputs(data):
    with pytest.raises(ValueError):  # noqa: PT011 - any of several messages
        keysearch.run(data)


def test_split_job_covers_the_keyspace_once():
    inputs = keysearch.split_job(PREFIX, "0" * 64, 2_500, 1_000)
    assert [(i["start"], i["stop"]) for i in inputs] == [(0, 1000), (1000, 2000), (2000, 2500)]


def test_the_demo_key_is_in_the_thirtieth_work_unit():
    inputs = keysearch.demo_inputs()
    assert len(inputs) == 40
    holder = inputs[29]
    assert holder["start"] <= keysearch.DEMO_KEY < holder["stop"]
    assert holder["target"] == keysearch.hash_key(keysearch.DEMO_PREFIX, keysearch.DEMO_KEY)


@pytest.fixture
def project(project_factory):
    return project_factory(
        min_quorum=1,
        target_nresults=1,
        app_kwargs={
            "name": "keysearch",
            "reference_path": "compute.examples.keysearch.run",
            "assimilator_path": "compute.examples.keysearch.assimilate",
        },
    )


def finish_one(project, host_factory, batch, index: int) -> WorkUnit:
    """Lease the batch's work units to a host, return the result of one of them only, and
    validate and assimilate it through the engine."""
    host = host_factory(project, cores=8)
    assignments = lease_replicas(host, batch.n_workunits)
    wu = batch.workunits.order_by("id")[index]
    [mine] = [a for a in assignments if a.input == wu.input]
    record_result(host, mine.replica_id, mine.lease_token, keysearch.run(wu.input), 1.0)
    validation.validate_pending()
    assert assimilation.assimilate_workunit(wu.id) == "done"
    return wu


@pytest.mark.django_db
def test_finding_the_key_cancels_the_rest_of_the_batch(project, host_factory):
    inputs = keysearch.split_job(PREFIX, keysearch.hash_key(PREFIX, 2_345), 4_000, 1_000)
    batch = submission.create_batch(project, project.apps.get(), inputs, name="search")
    finder = finish_one(project, host_factory, batch, 2)

    others = batch.workunits.exclude(id=finder.id)
    assert all(wu.error_mask & ErrorMask.CANCELLED for wu in others)
    # The hosts holding the other ranges were told to stop.
    assert not Replica.objects.filter(
        workunit__in=others, server_state=ServerState.IN_PROGRESS
    ).exists()
    assimilation.assimilate_pending()
    batch.refresh_from_db()
    assert (batch.state, batch.n_assimilated, batch.n_errored) == (BatchState.COMPLETED, 1, 3)
    finder.refresh_from_db()
    assert finder.error_mask == 0
    assert finder.is_finished
    assert AssimilatedOutput.objects.get(workunit_id=finder.id).output == {
        "found": 2_345,
        "checked": 346,
    }
    assert keysearch.found_key(batch) == 2_345


@pytest.mark.django_db
def test_a_range_without_the_key_cancels_nothing(project, host_factory):
    inputs = keysearch.split_job(PREFIX, keysearch.hash_key(PREFIX, 2_345), 4_000, 1_000)
    batch = submission.create_batch(project, project.apps.get(), inputs, name="search")
    finish_one(project, host_factory, batch, 0)

    batch.refresh_from_db()
    assert batch.state == BatchState.IN_PROGRESS
    assert batch.n_assimilated == 1
    assert not batch.workunits.filter(error_mask__gt=0).exists()
    assert keysearch.found_key(batch) is None


@pytest.mark.django_db
def test_a_false_claim_is_refused_and_cancels_nothing(project):
    inputs = keysearch.split_job(PREFIX, keysearch.hash_key(PREFIX, 2_345), 4_000, 1_000)
    batch = submission.create_batch(project, project.apps.get(), inputs, name="search")
    wu = batch.workunits.order_by("id").first()
    with pytest.raises(ValueError, match="not the key"):
        keysearch.assimilate(wu, {"found": 17, "checked": 18})
    assert not AssimilatedOutput.objects.exists()
    batch.refresh_from_db()
    assert batch.state == BatchState.IN_PROGRESS
    assert not batch.workunits.filter(error_mask__gt=0).exists()
