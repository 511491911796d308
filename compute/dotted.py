"""Resolve the dotted paths an App names (reference, comparator, assimilator)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import import_module
from typing import Any


@lru_cache(maxsize=256)
def resolve(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted path to a function")
    try:
        module = import_module(module_name)
    except ImportError as e:
        raise ImportError(f"cannot import {module_name!r}: {e}") from e
    try:
        target = getattr(module, attr)
    except AttributeError as e:
        raise ImportError(f"{module_name!r} has no attribute {attr!r}") from e
    if not callable(target):
        raise ImportError(f"{path!r} is not callable")
    return target
