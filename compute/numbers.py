"""Numbers that arrive from outside (a volunteer's message, an owner's input) as JSON.

JSON integers have no size limit and Python keeps them exact, so ``10**400`` parses; it has no
float, and ``math.isfinite`` or any float arithmetic on it raises OverflowError rather than
answering. Code that needs a float asks here first.
"""

from __future__ import annotations

import math


def finite_float(value: object) -> float | None:
    """``value`` as a finite float, or None for a bool, a non-number, NaN, an infinity or an
    integer beyond a double's range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
