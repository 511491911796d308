"""JSON values the database can store, whoever sends them (a volunteer, an owner, an admin).

Python's json module reads more than JSON: ``NaN`` and ``Infinity``, and ``1e999`` as an
infinity; and JSON's escapes can carry NUL (``\\u0000``) and lone surrogates (``\\ud800``).
PostgreSQL's jsonb refuses all of them and SQLite's JSON check refuses the non-finite
numbers, so each caller asks here first and answers with the reason instead of failing in
the database.
"""

from __future__ import annotations

import math
from typing import Any

NUL = "contains a NUL character (\\u0000), which the database cannot store"
SURROGATE = "contains a lone surrogate (\\ud800-\\udfff), which is not text"
NOT_FINITE = "contains NaN or an infinity, which JSON cannot hold"


def text_problem(value: str) -> str | None:
    """Why the database cannot store the string (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return NUL
    if value.isascii():
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return SURROGATE
    return None


def problem(value: Any) -> str | None:
    """Why a parsed JSON value cannot be stored, or None. Iterative, so deep nesting costs
    no recursion; keys are checked too."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found = text_problem(item)
            if found:
                return found
        elif isinstance(item, float):
            if not math.isfinite(item):
                return NOT_FINITE
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None
