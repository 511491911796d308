"""JSON values the database cannot store are refused with their reason, wherever they enter."""

import math

from django.core.exceptions import ValidationError

import pytest

from compute import jsonvalues
from compute.models import Batch, WorkUnit
from compute.submission import create_batch


@pytest.mark.parametrize(
    "value",
    [{"x": 1, "y": [1.5, "é", None, True]}, "💩", 10**400, [], {}, "a" * 1000],
)
def test_storable_values_have_no_problem(value):
    assert jsonvalues.problem(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\x00b", jsonvalues.NUL),
        ({"k\x00": 1}, jsonvalues.NUL),
        ([1, ["\ud800"]], jsonvalues.SURROGATE),
        ({"\udfff": 1}, jsonvalues.SURROGATE),
        ({"x": math.nan}, jsonvalues.NOT_FINITE),
        ([[[-math.inf]]], jsonvalues.NOT_FINITE),
    ],
    ids=["nul", "nul-in-key", "surrogate", "surrogate-in-key", "nan", "infinity"],
)
def test_each_unstorable_value_has_its_reason(value, reason):
    assert jsonvalues.problem(value) == reason


def test_deep_nesting_costs_no_recursion():
    value: list = ["\x00"]
    for _ in range(100_000):
        value = [value]
    assert jsonvalues.problem(value) == jsonvalues.NUL


@pytest.mark.parametrize(
    "bad", [{"x": math.nan}, {"x": "\x00"}, {"x": "\ud800"}], ids=["nan", "nul", "surrogate"]
)
def test_a_batch_with_an_unstorable_input_is_refused_whole(project_factory, bad):
    project = project_factory()
    with pytest.raises(ValidationError, match="input 2: contains"):
        create_batch(project, project.apps.get(), [{"x": 1}, bad, {"x": 3}], name="b")
    assert not Batch.objects.exists()
    assert not WorkUnit.objects.exists()
