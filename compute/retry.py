"""Retry a transaction that the database aborted to break a deadlock or a serialization
conflict. The aborted attempt changed nothing, so running it again is safe."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, transaction

P = ParamSpec("P")
T = TypeVar("T")

# PostgreSQL's SQLSTATEs for deadlock_detected and serialization_failure.
RETRYABLE = {"40P01", "40001"}


def is_retryable(error: OperationalError) -> bool:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) in RETRYABLE


def on_conflict(attempts: int = 4) -> Callable[[Callable[P, T]], Callable[P, T]]:
    def decorate(func: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except OperationalError as e:
                    # Inside an outer transaction the whole of it was aborted: only the
                    # caller that owns it can start over.
                    nested = transaction.get_connection().in_atomic_block
                    if attempt == attempts - 1 or nested or not is_retryable(e):
                        raise
                    time.sleep(random.uniform(0, 0.01 * 2**attempt))
            raise AssertionError("unreachable")

        return wrapper

    return decorate
