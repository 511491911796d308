"""The page's query strings: tabs, filters and pages, each leaving out what does not apply
(a computer board has no project or period) so following a link never needs a note."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from socialgrid.leaderboards.boards import Board, Metric, Period, Subject

DEFAULTS = {
    "board": Subject.USERS,
    "metric": Metric.TOTAL,
    "period": Period.ALL,
    "project": "",
    "page": 1,
}
GLOBAL_ONLY = (Subject.HOSTS, Subject.TEAMS)


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    current: bool


def query(current: Board, project_slug: str = "", **changes) -> str:
    """The query string of ``current`` with ``changes`` (on page 1 unless one is given)."""
    params = {
        "board": current.subject,
        "metric": current.metric,
        "period": current.period,
        "project": project_slug,
        "page": 1,
        **changes,
    }
    kept = {k: v for k, v in params.items() if v != DEFAULTS[k]}
    return "?" + urlencode(kept) if kept else "?"


def subject_links(board: Board, project_slug: str) -> list[Link]:
    links = []
    for subject in Subject:
        changes: dict = {"board": subject}
        if subject in GLOBAL_ONLY:
            changes.update(project="", period=Period.ALL)
        links.append(
            Link(subject.label, query(board, project_slug, **changes), subject == board.subject)
        )
    return links


def metric_links(board: Board, project_slug: str) -> list[Link]:
    return [
        Link(
            metric.label,
            query(
                board,
                project_slug,
                metric=metric,
                period=board.period if metric == Metric.TOTAL else Period.ALL,
            ),
            metric == board.metric,
        )
        for metric in Metric
    ]


def period_links(board: Board, project_slug: str) -> list[Link]:
    """Only a total-credit board of volunteers has periods."""
    if board.subject in GLOBAL_ONLY or board.metric != Metric.TOTAL:
        return []
    return [
        Link(period.label, query(board, project_slug, period=period), period == board.period)
        for period in Period
    ]


def page_url(board: Board, project_slug: str, number: int) -> str:
    return query(board, project_slug, page=number)
