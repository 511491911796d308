"""What a headless volunteer did, for the one line it prints when it stops."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Summary:
    done: int = 0  # results acknowledged
    errors: int = 0  # error reports acknowledged
    refused: int = 0  # reports the server refused (too late, cancelled meanwhile, ...)
    cancelled: int = 0
    resumed: int = 0
    credit: float = 0.0  # granted while running
    host_total: float = 0.0
    wall_time: float = 0.0
    stopped: str = ""
    fatal: str | None = None

    def line(self) -> str:
        parts = [
            _count(self.done, "task") + " done",
            _count(self.errors, "error"),
            # Python references claim little credit per task: show it, however small.
            f"credit {self.credit:.3g} (host total {self.host_total:.3g})",
            f"wall time {self.wall_time:.1f} s",
        ]
        extras = [("resumed", self.resumed), ("cancelled", self.cancelled)]
        parts += [f"{n} {label}" for label, n in [*extras, ("refused", self.refused)] if n]
        return f"volunteer stopped ({self.stopped}): " + ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
