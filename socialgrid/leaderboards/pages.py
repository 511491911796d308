"""A page of a leaderboard as the view shows it: rows with names, and the viewer's place.

The viewer's own standing is looked up separately from the page (one rank query), so it
is shown even far from the page being read, with the number of the page that holds it.
The friends board is the viewer and their friends ranked among themselves: a few rows,
scored in one query and ordered here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from compute.models import Host, Volunteer
from socialgrid.leaderboards import app_settings
from socialgrid.leaderboards.backends import Ranking, get_ranking
from socialgrid.leaderboards.boards import Board, Standing, Subject
from socialgrid.leaderboards.database import SCORE, source_for
from socialgrid.leaderboards.labels import Label, labels_for

TEAMS_MISSING = "Team rankings are not available yet."
FRIENDS_MISSING = "Friend rankings are not available yet."
SIGN_IN_FOR_FRIENDS = "Sign in to see how you compare with your friends."


@dataclass(frozen=True)
class Row:
    rank: int
    score: float
    label: Label
    is_mine: bool = False


@dataclass
class LeaderboardPage:
    board: Board
    number: int
    rows: list[Row] = field(default_factory=list)
    size: int = 0
    mine: Row | None = None
    unavailable: str = ""  # why the board cannot be shown, if it cannot

    @property
    def per_page(self) -> int:
        return app_settings.get("PAGE_SIZE")

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.size / self.per_page))

    @property
    def mine_page(self) -> int | None:
        return None if self.mine is None else (self.mine.rank - 1) // self.per_page + 1

    @property
    def first_rank(self) -> int:
        return (self.number - 1) * self.per_page + 1

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.page_count


def leaderboard_page(board: Board, number: int, viewer) -> LeaderboardPage:
    page = LeaderboardPage(board, number)
    if board.subject == Subject.FRIENDS:
        return _fill_friends(page, viewer)
    if source_for(board) is None:
        page.unavailable = TEAMS_MISSING
        return page
    view = get_ranking().view(
        board, (number - 1) * page.per_page, page.per_page, own_subject_id(board, viewer)
    )
    page.size = view.size
    _fill(page, view.standings, view.mine)
    return page


def _fill(page: LeaderboardPage, standings: list[Standing], mine: Standing | None) -> None:
    ids = {s.subject_id for s in standings} | ({mine.subject_id} if mine else set())
    labels = labels_for(page.board.subject, ids)
    mine_id = mine.subject_id if mine else None
    page.rows = [
        Row(s.rank, s.score, labels.get(s.subject_id, Label("—")), s.subject_id == mine_id)
        for s in standings
    ]
    if mine is not None:
        page.mine = Row(mine.rank, mine.score, labels.get(mine.subject_id, Label("—")), True)


def own_subject_id(board: Board, viewer) -> int | None:
    """Whose place the viewer looks for: their account, best computer, or team."""
    if viewer is None or not viewer.is_authenticated:
        return None
    if board.subject == Subject.HOSTS:
        score = SCORE[board.metric]
        return (
            Host.objects.filter(user_id=viewer.pk, banned=False, **{f"{score}__gt": 0})
            .order_by(f"-{score}", "id")
            .values_list("id", flat=True)
            .first()
        )
    if board.subject == Subject.TEAMS:
        try:
            from socialgrid.teams.membership import team_of
        except ImportError:
            return None
        team = team_of(viewer)
        return team.pk if team else None
    return viewer.pk


def friend_ids(viewer) -> set[int] | None:
    """The viewer's friends (socialgrid.friends), or None while that app has no API."""
    try:
        from socialgrid.friends.friendships import friend_ids as friends_of
    except ImportError:
        return None
    return set(friends_of(viewer))


def friends_standings(ranking: Ranking, board: Board, viewer) -> list[Standing] | None:
    """The viewer and their friends, ranked among themselves; banned ones left out,
    friends with no credit yet at the bottom."""
    friends = friend_ids(viewer)
    if friends is None:
        return None
    ids = friends | {viewer.pk}
    ids -= set(
        Volunteer.objects.filter(user_id__in=ids, banned=True).values_list("user_id", flat=True)
    )
    scores = ranking.scores_of(board.as_users(), ids)
    ordered = sorted(ids, key=lambda i: (-scores.get(i, 0.0), i))
    return [Standing(n, i, scores.get(i, 0.0)) for n, i in enumerate(ordered, start=1)]


def _fill_friends(page: LeaderboardPage, viewer) -> LeaderboardPage:
    if viewer is None or not viewer.is_authenticated:
        page.unavailable = SIGN_IN_FOR_FRIENDS
        return page
    standings = friends_standings(get_ranking(), page.board, viewer)
    if standings is None:
        page.unavailable = FRIENDS_MISSING
        return page
    page.size = len(standings)
    mine = next((s for s in standings if s.subject_id == viewer.pk), None)
    start = (page.number - 1) * page.per_page
    _fill(page, standings[start : start + page.per_page], mine)
    return page
