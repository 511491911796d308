"""Leaderboards at a million volunteers: load PostgreSQL (and Redis), time each backend.

Runs against a database of its own, never the test database::

    createdb -h 127.0.0.1 -U postgres sg_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_bench \\
    REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/leaderboard.py --users 1000000

It migrates the database, COPYs in the users, profiles, credit totals, memberships of three
projects and today's and this week's roll-ups (skipped when a previous run loaded the same
number, unless ``--reload``), VACUUM ANALYZEs, then for each backend and board times the
top-100 page and the ranks of 200 random volunteers on the board (median and p99), and
prints the plans of the database's queries. Redis (when REDIS_URL is set) is rebuilt from
the database first through the same code as the periodic task, with its time and memory.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "socialgrid.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.color import no_style  # noqa: E402
from django.db import connection, models  # noqa: E402

from compute.models import Membership, Project, Volunteer  # noqa: E402
from socialgrid.accounts.models import Privacy, Profile  # noqa: E402
from socialgrid.leaderboards.boards import Board, Metric, Period, Subject, make_board  # noqa: E402
from socialgrid.leaderboards.database import source_for  # noqa: E402
from socialgrid.leaderboards.models import DailyCredit, WeeklyCredit  # noqa: E402

User = get_user_model()
NOW = datetime.now(UTC)
PROJECT_SHARES = (0.9, 0.4, 0.2)  # who joined each of the three projects


# --- Loading ----------------------------------------------------------------------------


def copy_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[tuple]) -> int:
    """COPY ``rows`` (values of ``fields``) into ``model``'s table; every other column gets
    its model default, so the bench survives a model gaining a field."""
    given = set(fields)
    rest = [
        f
        for f in model._meta.concrete_fields
        if f.attname not in given and f.name not in given and not isinstance(f, models.AutoField)
    ]

    def default(f: models.Field):
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            return NOW
        if f.has_default():
            return f.get_default()
        return None if f.null else f.get_default()

    columns = [model._meta.get_field(name).column for name in fields] + [f.column for f in rest]
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"COPY {table} ({', '.join(connection.ops.quote_name(c) for c in columns)}) FROM STDIN"
    n = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row((*row, *(default(f) for f in rest)))
            n += 1
    return n


def credit_of(rnd: random.Random) -> tuple[float, float]:
    """(total, RAC) of one volunteer: 15% never earned; totals log-normal over six decades
    (rounded to cents, so small ones tie); 40% active with a RAC, the rest decayed."""
    if rnd.random() < 0.15:
        return 0.0, 0.0
    total = round(math.exp(rnd.gauss(6.0, 2.2)), 2)
    if rnd.random() < 0.4:
        rac = round(math.exp(rnd.gauss(3.0, 1.5)), 4)
    else:
        rac = 0.0 if rnd.random() < 0.5 else math.exp(rnd.gauss(-3.0, 2.0))
    return total, rac


def load(n: int, seed: int) -> None:
    rnd = random.Random(seed)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {User._meta.db_table} RESTART IDENTITY CASCADE")
    owner = User.objects.create(id=n + 1, username="bench-owner", password="!")
    projects = [
        Project.objects.create(slug=f"bench-{i}", name=f"Bench project {i}", owner=owner)
        for i in range(len(PROJECT_SHARES))
    ]
    ids = range(1, n + 1)
    copy_rows(
        User,
        ["id", "username", "password", "email", "date_joined"],
        ((i, f"bench{i}", "!", "", NOW) for i in ids),
    )
    copy_rows(
        Profile,
        ["user", "display_name", "privacy"],
        ((i, f"Volunteer {i}", Privacy.ANONYMOUS if i % 20 == 0 else Privacy.NAMED) for i in ids),
    )
    credit = {i: credit_of(rnd) for i in ids}
    banned = set(rnd.sample(list(ids), n // 1000))
    stamp = NOW.timestamp()
    copy_rows(
        Volunteer,
        ["user", "total_credit", "rac", "rac_time", "banned"],
        ((i, t, r, stamp, i in banned) for i, (t, r) in credit.items()),
    )
    memberships, today, week = [], [], []
    day = make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, now=NOW)[0].start
    monday = make_board(Subject.USERS, Metric.TOTAL, Period.WEEK, now=NOW)[0].start
    for i, (total, rac) in credit.items():
        joined = [
            p for p, share in zip(projects, PROJECT_SHARES, strict=True) if rnd.random() < share
        ]
        for k, p in enumerate(joined):
            part = 0.7 if k == 0 else 0.3 / max(1, len(joined) - 1)
            memberships.append((i, p.id, round(total * part, 2), rac * part, stamp))
        if rac > 1 and joined and rnd.random() < 0.6:  # active this week
            week_amount = round(rac * rnd.uniform(2, 7), 2)
            week.append((i, None, monday, week_amount))
            week.append((i, joined[0].id, monday, week_amount))
            if rnd.random() < 0.6:  # and today
                today.append((i, None, day, round(rac * rnd.uniform(0.2, 1.5), 2)))
                today.append((i, joined[0].id, day, today[-1][3]))
    copy_rows(Membership, ["user", "project", "total_credit", "rac", "rac_time"], memberships)
    copy_rows(DailyCredit, ["user", "project", "day", "amount"], today)
    copy_rows(WeeklyCredit, ["user", "project", "week", "amount"], week)
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [User, Membership]):
            cursor.execute(sql)
        cursor.execute("VACUUM ANALYZE")
    print(
        f"loaded {n:,} users, {len(memberships):,} memberships, {len(today):,} daily and "
        f"{len(week):,} weekly roll-ups in {time.perf_counter() - started:.0f} s"
    )


# --- Timing -----------------------------------------------------------------------------


def millis(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return f"{statistics.median(samples):7.2f} {p99:7.2f}"


def board_ids(board: Board) -> list[int]:
    source = source_for(board)
    return list(source.visible().order_by().values_list(source.id_field, flat=True))


def explain(board: Board, subject_id: int) -> None:
    """The database's plans for the top page and for the two counts of one rank."""
    source = source_for(board)
    id_f, score_f = source.id_field, source.score_field
    score = source.rows.filter(**{id_f: subject_id}).values_list(score_f, flat=True)[0]
    ahead = source.rows.order_by().values(id_f)
    queries = {
        "top 100": source.ordered().values_list(id_f, score_f)[:100],
        "count ahead (score >)": ahead.filter(**{f"{score_f}__gt": score}),
        "count ahead (tie, lower id)": ahead.filter(**{score_f: score, f"{id_f}__lt": subject_id}),
    }
    with connection.cursor() as cursor:
        for name, qs in queries.items():
            sql, params = qs.query.sql_with_params()
            if name.startswith("count"):
                sql = f"SELECT count(*) FROM ({sql}) AS ahead"
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {sql}", params)
            print(f"  -- {board.key}, {name}:")
            for (line,) in cursor.fetchall():
                print(f"     {line}")


PREFIX = "sg:lb:bench"


def use_backend(name: str) -> object:
    """Switch the app's backend (what the page view uses) and return it."""
    from socialgrid.leaderboards.backends import get_ranking

    settings.LEADERBOARDS = {"BACKEND": name, "REDIS_PREFIX": PREFIX}
    get_ranking.cache_clear()
    return get_ranking()


def rebuild_redis() -> None:
    from socialgrid.leaderboards.sorted_sets import cached_boards

    ranking = use_backend("redis")
    ranking.clear()
    t = time.perf_counter()
    sizes = ranking.rebuild(cached_boards(NOW))
    took = time.perf_counter() - t
    keys = [ranking.key(b) for b in cached_boards(NOW)]
    memory = sum(ranking.redis.memory_usage(k, samples=0) or 0 for k in keys)
    entries = sum(sizes.values())
    print(
        f"redis rebuild of {len(sizes)} boards ({entries:,} entries): {took:.1f} s, "
        f"{memory / 2**20:.0f} MiB ({memory / max(1, entries):.0f} bytes an entry)"
    )


def time_page_views(board: Board, viewers: list[int]) -> list[float]:
    """What a signed-in visitor waits for: 50 rows with names, their own place and the
    board's size, read in one snapshot as deployed."""
    from socialgrid.leaderboards.pages import leaderboard_page

    leaderboard_page(board, 1, User(id=viewers[0]))  # warm
    out = []
    for viewer in viewers:
        t = time.perf_counter()
        leaderboard_page(board, 1, User(id=viewer))
        out.append((time.perf_counter() - t) * 1000)
    return out


def run(boards: dict[str, Board], samples: int, seed: int, redis_url: str) -> None:
    rnd = random.Random(seed + 1)
    backends = ["database"]
    if redis_url:
        rebuild_redis()
        backends.append("redis")
    picks = {name: rnd.sample(board_ids(board), samples) for name, board in boards.items()}
    print()
    print(
        f"{'board':<26} {'backend':<9} {'rows':>9}  {'top-100 ms':>15}  {'rank ms':>15}"
        f"  {'page view ms':>15}"
    )
    print(f"{'':<37} {'':>9}" + f"  {'median     p99':>15}" * 3)
    for name, board in boards.items():
        reference = None
        for backend_name in backends:
            ranking = use_backend(backend_name)
            size = ranking.size(board)
            ranking.page(board, 0, 100)  # warm
            top = millis(lambda r=ranking, b=board: r.page(b, 0, 100), 50)
            ranks, got = [], {}
            for subject_id in picks[name]:
                t = time.perf_counter()
                got[subject_id] = ranking.standing(board, subject_id)
                ranks.append((time.perf_counter() - t) * 1000)
            if reference is None:
                reference = got
            else:
                assert got == reference, f"{backend_name} disagrees with the database on {name}"
            views = time_page_views(board, picks[name][:50])
            print(
                f"{name:<26} {backend_name:<9} {size:>9,}  {summary(top)}  {summary(ranks)}"
                f"  {summary(views)}"
            )
    print(f"\nevery one of the {samples} ranks per board agreed between the backends")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200, help="random ranks per board")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reload", action="store_true", help="reload even if already loaded")
    parser.add_argument("--explain", action="store_true", help="print the database's plans")
    args = parser.parse_args()

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql" or "bench" not in db["NAME"]:
        sys.exit("point DATABASE_URL at a PostgreSQL database of its own, e.g. .../sg_bench")
    call_command("migrate", verbosity=0)
    loaded = Volunteer.objects.count()
    if args.reload or loaded != args.users:
        load(args.users, args.seed)
    else:
        print(f"reusing the {loaded:,} volunteers already loaded (--reload to load again)")

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    print(
        f"machine: {os.cpu_count()} cores (shared), {platform.machine()}, "
        f"Python {platform.python_version()}, PostgreSQL {pg}"
        + (f", Redis at {settings.REDIS_URL}" if settings.REDIS_URL else "")
    )
    project = Project.objects.get(slug="bench-0")
    boards = {
        "global total": Board(Subject.USERS),
        "global RAC": Board(Subject.USERS, Metric.RAC),
        f"project total ({project.slug})": Board(Subject.USERS, project_id=project.id),
        "today": make_board(Subject.USERS, Metric.TOTAL, Period.TODAY, now=NOW)[0],
        "this week": make_board(Subject.USERS, Metric.TOTAL, Period.WEEK, now=NOW)[0],
    }
    if args.explain:
        for board in boards.values():
            ids = board_ids(board)
            explain(board, ids[len(ids) // 2])
    run(boards, args.samples, args.seed, settings.REDIS_URL)


if __name__ == "__main__":
    main()
