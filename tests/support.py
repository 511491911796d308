"""Small apps the engine tests run: a Python reference, a custom comparator, handlers."""

from __future__ import annotations

from compute.models import WorkUnit

HANDLED: list[tuple[int, object]] = []


def square(data: dict) -> dict:
    return {"y": data["x"] * data["x"]}


def same_parity(a: dict, b: dict) -> bool:
    return a["y"] % 2 == b["y"] % 2


def failing_handler(workunit: WorkUnit, output: object) -> None:
    raise RuntimeError("the archive is unreachable")


def recording_handler(workunit: WorkUnit, output: object) -> None:
    HANDLED.append((workunit.id, output))
