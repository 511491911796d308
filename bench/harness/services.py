"""The data services of a run: the bench's PostgreSQL database and Redis database.

Both are wiped at the start of a run, so every helper that wipes checks its target first:
the database's name must contain "bench", and Redis databases 0, 1 and 2 (development and
the test levels) are never flushed.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from bench.harness import metrics

PROTECTED_REDIS_DBS = {0, 1, 2}  # development, the test levels' broker and cache


class TargetRefused(RuntimeError):
    """The bench would have wiped a database that is not its own."""


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def redis_db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path else 0


def check_targets(database_url: str, redis_url: str) -> None:
    """Refuse to drop a database or flush a Redis database that is not the bench's."""
    check_database(database_url)
    if redis_db(redis_url) in PROTECTED_REDIS_DBS:
        raise TargetRefused(
            f"the bench flushes its Redis database; {redis_url} is one of the protected "
            f"databases {sorted(PROTECTED_REDIS_DBS)}"
        )


def check_database(url: str) -> None:
    name = database_name(url)
    if "bench" not in name:
        raise TargetRefused(f"the bench drops its database: {name!r} must contain 'bench'")


def reset_database(url: str) -> None:
    """DROP (forcing out leftover connections) and CREATE the bench database."""
    _administer(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}")


def drop_database(url: str) -> None:
    _administer(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


def copy_database(source: str, target: str) -> None:
    """CREATE the bench database ``target`` as a copy of ``source`` (its template), after
    dropping any leftover of it; nothing may be connected to ``source``."""
    import psycopg
    from psycopg import sql

    check_database(source)
    drop_database(target)
    admin = urlunsplit(urlsplit(target)._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(database_name(target)), sql.Identifier(database_name(source))
            )
        )


def _administer(url: str, *statements: str) -> None:
    """Run statements naming the bench database from the server's maintenance database."""
    import psycopg
    from psycopg import sql

    check_database(url)
    name = sql.Identifier(database_name(url))
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(name))


def flush_redis(url: str) -> None:
    import redis

    if redis_db(url) in PROTECTED_REDIS_DBS:
        raise TargetRefused(f"refusing to flush {url}")
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        client.flushdb()
    finally:
        client.close()


def redis_server_pid(url: str) -> int | None:
    """The server's pid as it reports it (INFO server), if it runs on this machine."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        info = client.info("server")
    finally:
        client.close()
    pid = int(info.get("process_id", 0))
    return pid if pid and metrics.cpu_seconds(pid) is not None else None


def broker_backlog(url: str, queue: str) -> dict[str, int]:
    """Messages waiting in the run's Celery queue, by task name (kombu keeps a Redis list per
    queue, and one more per priority step)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    counts: dict[str, int] = {}
    try:
        for key in client.scan_iter(match=f"{queue}*", count=1000):
            if client.type(key) != b"list":
                continue
            for raw in client.lrange(key, 0, -1):
                try:
                    task = json.loads(raw)["headers"]["task"]
                except (ValueError, KeyError, TypeError):
                    task = "?"
                counts[task] = counts.get(task, 0) + 1
    finally:
        client.close()
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def redis_version(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        return str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()
