import math

import pytest

from compute.numbers import finite_float


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0.0), (-3, -3.0), (2.5, 2.5), (10**300, 1e300), (1e308, 1e308)],
)
def test_a_number_with_a_finite_float_is_that_float(value, expected):
    assert finite_float(value) == expected
    assert isinstance(finite_float(value), float)


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), math.nan, math.inf, -math.inf, True, False, None, "1", [1], {"x": 1}],
)
def test_anything_else_has_none(value):
    assert finite_float(value) is None
