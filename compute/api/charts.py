"""Geometry of the dashboard's SVG charts, computed here so that the templates only place
numbers (no chart library, nothing but integers and escaped labels reach the page)."""

from __future__ import annotations

from dataclasses import dataclass

from compute.api.owner_stats import Minute

WIDTH = 600
HEIGHT = 150
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float  # top of the bar
    height: float
    y2: float  # top of the stacked part (errors), above the bar
    height2: float
    label: str  # tooltip


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    peak: int  # the value at the top of the scale
    width: int = WIDTH
    height: int = HEIGHT


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least ``value``: a readable scale top."""
    step = 1
    while True:
        for multiple in (1, 2, 5):
            if step * multiple >= value:
                return step * multiple
        step *= 10


def _scale(value: int, peak: int) -> float:
    return round(HEIGHT * value / peak, 2)


def _bar(i: int, slot: float, h: float, h2: float, label: str) -> Bar:
    """The i-th bar: height h from the baseline, and h2 stacked above it."""
    return Bar(
        x=round(i * slot + GAP / 2, 2),
        width=round(slot - GAP, 2),
        y=round(HEIGHT - h, 2),
        height=h,
        y2=round(HEIGHT - h - h2, 2),
        height2=h2,
        label=label,
    )


def results_chart(minutes: list[Minute]) -> BarChart:
    """Results (and, stacked above them, errors) per minute."""
    peak = nice_ceiling(max([m.results + m.errors for m in minutes] + [1]))
    slot = WIDTH / max(1, len(minutes))
    bars = []
    for i, m in enumerate(minutes):
        h = _scale(m.results, peak)
        h2 = _scale(m.errors, peak)
        label = f"{m.start:%H:%M} UTC: {m.results} results"
        if m.errors:
            label += f", {m.errors} errors"
        bars.append(_bar(i, slot, h, h2, label))
    return BarChart(bars, peak)


def hosts_chart(minutes: list[Minute]) -> BarChart:
    """Distinct volunteers' hosts returning work in each minute."""
    peak = nice_ceiling(max([m.hosts for m in minutes] + [1]))
    slot = WIDTH / max(1, len(minutes))
    bars = []
    for i, m in enumerate(minutes):
        h = _scale(m.hosts, peak)
        bars.append(_bar(i, slot, h, 0, f"{m.start:%H:%M} UTC: {m.hosts} volunteers' hosts"))
    return BarChart(bars, peak)


@dataclass(frozen=True)
class Share:
    name: str
    count: int
    percent: float  # of the largest count, for the bar's length


def outcome_shares(outcomes: dict[str, int]) -> list[Share]:
    top = max([*outcomes.values(), 1])
    return [Share(name, n, round(100 * n / top, 1)) for name, n in outcomes.items()]
