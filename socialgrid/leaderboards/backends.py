"""One interface, two backends — like compute.feeder's dispatch cache.

- :class:`~socialgrid.leaderboards.database.DatabaseRanking` counts in the database: the
  embedded mode's backend and everyone's fallback.
- :class:`~socialgrid.leaderboards.sorted_sets.RedisRanking` reads Redis sorted sets, a
  cache of the database rebuilt by ``refresh_leaderboards`` and freshened by each grant;
  chosen when ``REDIS_URL`` is set (or ``LEADERBOARDS["BACKEND"]`` says so).

Why both, measured by bench/leaderboard.py on 1,000,000 volunteers (PostgreSQL 15, Redis 7,
2 shared cores; milliseconds, median / p99 over 200 random volunteers of each board):

    board (ranked rows)     top-100 page       one rank              page view
                            database  redis    database  redis       database  redis
    all time (849k)         0.4/0.8   0.6/1.1  28/56     0.07/0.25   31/68     5/9
    RAC (594k)              0.8/1.4   0.8/0.9  23/59     0.16/0.45   29/62     4/6
    one project (764k)      1.3/2.0   0.5/0.8  40/63     0.06/0.12   44/69     5/11
    today (120k)            1.6/2.5   0.7/1.1  12/24     0.17/0.43   22/31     5/9
    this week (199k)        2.5/3.8   0.5/0.6  18/38     0.12/0.32   26/44     4/6

(A page view is what a signed-in visitor waits for: 50 rows with names, and their place.)

A page is an index range in either backend, well inside the 50 ms budget. A rank is not:
the database counts the rows ahead (index-only, ~15 million index entries a second here, so
a volunteer half-way down a million-row board costs ~30 ms and the tail past 50 ms), while
ZRANK walks a skiplist in O(log n) whatever the position. So:

- Embedded (no REDIS_URL): the database. Its boards are thousands of rows, where a rank
  is a few hundred microseconds, and no second store has to be kept coherent.
- With Redis: sorted sets for the big boards (volunteers overall and per public project,
  all time, RAC, today, this week; computers), at ~124 bytes an entry (500 MiB for the 4.2
  million entries above) and a full rebuild in ~18 s, run every 10 minutes; each grant
  freshens its own entries in between. Teams (thousands of rows) and friends (a handful)
  are always counted in the database, and any board whose cache is missing, stale or
  unreachable falls back to it — slower, never wrong.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from django.conf import settings

from socialgrid.leaderboards import app_settings
from socialgrid.leaderboards.boards import Board, Standing, View
from socialgrid.leaderboards.database import DatabaseRanking


class Ranking(Protocol):
    def page(self, board: Board, offset: int, limit: int) -> list[Standing]: ...
    def standing(self, board: Board, subject_id: int) -> Standing | None: ...
    def size(self, board: Board) -> int: ...
    def view(self, board: Board, offset: int, limit: int, subject_id: int | None) -> View: ...
    def scores_of(self, board: Board, subject_ids: set[int]) -> dict[int, float]: ...


@lru_cache(maxsize=1)
def get_ranking() -> Ranking:
    if app_settings.backend_name() == "redis":
        from socialgrid.leaderboards.sorted_sets import RedisRanking

        return RedisRanking(settings.REDIS_URL, app_settings.get("REDIS_PREFIX"))
    return DatabaseRanking()
