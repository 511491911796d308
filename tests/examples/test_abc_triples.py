from __future__ import annotations

from itertools import pairwise
from math import log

import pytest

from compute import submission
from compute.examples import abc_triples
from compute.models import AssimilatedOutput


def hits(c_lo: int, c_hi: int) -> list[list[int]]:
    return abc_triples.run({"c_lo": c_lo, "c_hi": c_hi})["hits"]


# The published numbers of abc-hits with c < 10^n (c < 10^6: 1268 is checked on the kernel,
# in test_kernels_match_references, as the reference needs half a minute for it).
@pytest.mark.parametrize(
    ("limit", "count"), [(10, 1), (10**2, 6), (10**3, 31), (10**4, 120), (10**5, 418)]
)
def test_it_finds_the_published_number_of_hits(limit, count):
    assert len(hits(1, limit)) == count


def test_the_first_hits_are_the_known_ones():
    assert hits(1, 50) == [[1, 8, 9, 6], [5, 27, 32, 30], [1, 48, 49, 42]]


def test_every_hit_is_a_hit_and_they_come_ordered_by_c_then_a():
    found = hits(1, 20_000)
    for hit in found:
        abc_triples.check_hit(hit, 1, 20_000)
    assert found == sorted(found, key=lambda h: (h[2], h[0]))


def test_splitting_a_range_changes_nothing():
    whole = hits(1, 5_000)
    parts = abc_triples.split_job(1, 5_000, 700)
    assert [h for part in parts for h in abc_triples.run(part)["hits"]] == whole


def test_the_radical_sieve_agrees_with_trial_division():
    rad = abc_triples.radicals(2_000)
    assert all(rad[n] == abc_triples.rad(n) for n in range(1, 2_000))


@pytest.mark.parametrize(
    "data",
    [
        {"c_lo": 0, "c_hi": 10},
        {"c_lo": 10, "c_hi": 10},
        {"c_lo": 1, "c_hi": 10**7 + 1},
        {"c_lo": 1.0, "c_hi": 10},
        {"c_lo": True, "c_hi": 10},
        {"c_hi": 10},
    ],
    ids=["zero", "empty", "too-large", "float", "bool", "missing"],
)
def test_it_rejects_bad_ranges(data):
    with pytest.raises(ValueError, match="c_lo"):
        abc_triples.run(data)


def test_the_demo_covers_c_below_four_million_in_twenty_work_units():
    inputs = abc_triples.demo_inputs()
    assert len(inputs) == 20
    assert inputs[0]["c_lo"] == 1
    assert inputs[-1]["c_hi"] == 4_000_000
    assert all(a["c_hi"] == b["c_lo"] for a, b in pairwise(inputs))


@pytest.fixture
def app(project_factory):
    project = project_factory(
        app_kwargs={
            "name": "abc-triples",
            "reference_path": "compute.examples.abc_triples.run",
            "assimilator_path": "compute.examples.abc_triples.assimilate",
        }
    )
    return project.apps.get()


@pytest.mark.django_db
def test_the_batch_hits_are_listed_best_quality_first(app):
    inputs = abc_triples.split_job(1, 1_000, 250)
    batch = submission.create_batch(app.project, app, inputs, name="abc")
    for wu in batch.workunits.all():
        abc_triples.assimilate(wu, abc_triples.run(wu.input))
    assert AssimilatedOutput.objects.filter(batch=batch).count() == 4

    listed = abc_triples.list_hits(batch)
    assert len(listed) == 31
    qualities = [h["quality"] for h in listed]
    assert qualities == sorted(qualities, reverse=True)
    # The best below 1000 is 3 + 125 = 128, rad = 30.
    assert listed[0] == {"a": 3, "b": 125, "c": 128, "rad": 30, "quality": log(128) / log(30)}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "hit",
    [[1, 2, 3, 6], [1, 8, 9, 5], [8, 1, 9, 6], [2000, 2048, 4048, 2], [3, 6, 9, 6]],
    ids=["not-a-hit", "wrong-rad", "a-not-below-b", "outside-range", "not-coprime"],
)
def test_a_false_hit_is_refused(app, hit):
    batch = submission.create_batch(app.project, app, [{"c_lo": 1, "c_hi": 1000}], name="abc")
    with pytest.raises(ValueError, match="not"):
        abc_triples.assimilate(batch.workunits.get(), {"hits": [[1, 8, 9, 6], hit]})
    assert not AssimilatedOutput.objects.exists()
