"""Do two outputs agree? The app chooses exact equality, numbers within a tolerance, or its
own function."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from compute.dotted import resolve
from compute.models import App, Comparator

if TYPE_CHECKING:
    from compute.verdicts import AppPolicy


def exact(a: Any, b: Any) -> bool:
    # JSON does not tell 1 from 1.0; a Python reference and a browser may differ there.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(exact(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def numeric(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        try:
            if math.isnan(a) or math.isnan(b):
                return math.isnan(a) and math.isnan(b)
            return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
        except OverflowError:
            # An integer beyond a double's range has no float to compare within a
            # tolerance; only an equal number agrees with it.
            return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(numeric(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(numeric(x, y, tolerance) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def for_app(app: App | AppPolicy) -> Callable[[Any, Any], bool]:
    if app.comparator == Comparator.NUMERIC:
        tolerance = app.tolerance
        return lambda a, b: numeric(a, b, tolerance)
    if app.comparator == Comparator.CUSTOM:
        return resolve(app.comparator_path)
    return exact
