"""The check that suites driving hostile or abrupt clients apply (``no_error_logs``)."""

from __future__ import annotations

import logging
import sys

from tests.conftest import error_records


def record(name: str, level: int, *, traceback: bool = False) -> logging.LogRecord:
    exc_info = None
    if traceback:
        try:
            raise RuntimeError("x")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, "what happened", None, exc_info)


def test_errors_and_tracebacks_are_caught_warnings_are_not():
    records = [
        record("compute.dispatch.socket", logging.ERROR),
        record("uvicorn.error", logging.WARNING, traceback=True),
        record("compute.dispatch.socket", logging.WARNING),
        record("compute.dispatch.socket", logging.DEBUG),
    ]
    assert error_records(records) == [
        "compute.dispatch.socket: what happened",
        "uvicorn.error: what happened",
    ]


def test_a_clients_own_records_are_its_business():
    records = [
        record("compute.headless.volunteer", logging.ERROR),
        record("compute.headlessly", logging.ERROR),
        record("compute.dispatch.socket", logging.ERROR),
    ]
    assert error_records(records, ("compute.headless",)) == [
        "compute.headlessly: what happened",
        "compute.dispatch.socket: what happened",
    ]
