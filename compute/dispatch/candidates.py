"""Candidates for one flush's leases: entries popped from the feeder's cache, the work units
behind them, and which of them the flush's hosts and users already hold.

Popping is per app and for all of the flush's requests together; what the requests do not
take goes back to the cache after the flush commits (everything popped goes back if it
fails). An app's cache that runs dry is refilled from the database at once, and a request
left short pops again, a few rounds at most per app and flush.

A cache can also hold work and none of it for the host asking: the other replicas of work
units the host already computes, which wait for a second host. A lone volunteer (or a few,
on a project with a long queue) would then meet the same untakeable entries at the head of
the cache on every request, and never the work behind them; and a cache whose head is
stale (replicas leased or finished behind its back) costs a request its rounds. A request
left short after passing or dropping such entries looks in the database instead, for unsent
replicas of work units its host and user hold none of (BOINC's feeder answers the same
starvation by evicting entries that many requests found infeasible).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from redis.exceptions import RedisError

from compute import feeder
from compute.catalog import AppInfo
from compute.dispatch.dialect import Dialect
from compute.dispatch.ops import HostRef
from compute.states import ServerState

log = logging.getLogger(__name__)

# A request pops a few more candidates than it wants, since some may be refused.
OVERFETCH = 4
MAX_ROUNDS = 4

# In one statement: the popped replicas still unsent, with their work units (entries not
# among them are stale: leased meanwhile by another process, or no longer needed), and the
# replicas of those work units that the flush's hosts or users already hold.
CANDIDATES = """
SELECT r.id, w.id, w.error_mask, w.canonical_replica_id, w.hr_class, w.name, w.input{text},
       w.delay_bound, w.replication, NULL, NULL
FROM compute_replica r JOIN compute_workunit w ON w.id = r.workunit_id
WHERE r.id {ids} AND r.server_state = %s
UNION ALL
SELECT NULL, workunit_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, host_id, user_id
FROM compute_replica
WHERE workunit_id {wus} AND (host_id {hosts} OR user_id {users})
"""

# Unsent replicas of an app that a host and its user hold no replica of the work unit of,
# in the feeder's scan order; those popped by this flush already are left out.
FOR_HOST = f"""
SELECT r.id, r.workunit_id, r.ordinal, w.priority
FROM compute_replica r JOIN compute_workunit w ON w.id = r.workunit_id
WHERE r.app_id = %s AND r.server_state = '{ServerState.UNSENT.value}' {{seen}}
  AND w.error_mask = 0 AND w.canonical_replica_id IS NULL {{hr}}
  AND NOT EXISTS (
    SELECT 1 FROM compute_replica h
    WHERE h.workunit_id = r.workunit_id AND (h.host_id = %s OR h.user_id = %s)
  )
ORDER BY r.id LIMIT %s
"""


@dataclass(slots=True)
class WorkUnitRow:
    finished: bool
    hr_class: str
    name: str
    input_json: str
    delay_bound: int
    replication: str


class Candidates:
    def __init__(self, sql: Dialect, hosts: set[HostRef]) -> None:
        self.sql = sql
        self.queue = feeder.get_queue()
        self.host_ids = sorted({h.id for h in hosts})
        self.user_ids = sorted({h.user_id for h in hosts if h.user_id is not None})
        self.pools: dict[int, deque[feeder.Entry]] = {}
        self.popped: dict[int, list[feeder.Entry]] = {}
        self.rounds: dict[int, int] = {}
        self.refilled: set[int] = set()
        self.workunits: dict[int, WorkUnitRow] = {}
        self.unsent: set[int] = set()
        self.seen: set[int] = set()  # replicas popped by this flush
        self.held_by_host: set[tuple[int, int]] = set()
        self.held_by_user: set[tuple[int, int]] = set()
        self.classed: set[int] = set()  # work units given a platform class in this flush
        self.looked: set[tuple[int, int]] = set()  # (app, host) looked up in the database
        self.failed = False  # the cache failed: requests left empty get an error, not "no work"

    # --- popping ------------------------------------------------------------------------------

    def pop_ahead(self, demand: dict[int, int]) -> tuple[str, list] | None:
        """The first round, popped before the flush's first statement from what its requests
        ask for (their hosts' standing is not read yet): returns the read of those
        candidates, for the flush to send with that statement and hand to :meth:`loaded`."""
        fresh: list[feeder.Entry] = []
        for app_id, n in demand.items():
            fresh += self._pop(app_id, n + OVERFETCH)
        return self._load_statement(fresh)

    def prefetch(self, demand: dict[int, int]) -> None:
        """One round for every app the flush's requests want, before any is served: what
        was popped ahead counts, so only a shortfall is popped now."""
        fresh: list[feeder.Entry] = []
        for app_id, n in demand.items():
            held = len(self.pools.get(app_id) or ())
            if app_id in self.rounds and held >= n:
                continue
            fresh += self._pop(app_id, n + OVERFETCH - held)
        self._load(fresh)

    def _more(self, app: AppInfo, n: int) -> bool:
        if self.rounds.get(app.id, 0) >= MAX_ROUNDS:
            return False
        fresh = self._pop(app.id, n + OVERFETCH)
        self._load(fresh)
        return bool(fresh)

    def _pop(self, app_id: int, n: int) -> list[feeder.Entry]:
        self.rounds[app_id] = self.rounds.get(app_id, 0) + 1
        entries: list[feeder.Entry] = []
        try:
            entries += self.queue.pop(app_id, n)
            if len(entries) < n and app_id not in self.refilled:
                # The cache ran dry: refill it now rather than wait for the periodic feeder.
                self.refilled.add(app_id)
                feeder.refill(app_id, queue=self.queue, sql=self.sql)
                entries += self.queue.pop(app_id, n - len(entries))
        except (RedisError, OSError) as e:
            # Redis is going away: the flush's results still commit; its requests are told
            # to retry. Entries the refill pushed are found again by the feeder.
            log.warning("dispatch cache unavailable: %s", e)
            self.failed = True
            self.rounds[app_id] = MAX_ROUNDS
        # A refill pushes every unsent replica from its cursor, those this flush popped
        # already among them: each may be a candidate once.
        return self._add(app_id, entries)

    def _add(self, app_id: int, entries: list[feeder.Entry]) -> list[feeder.Entry]:
        """Make ``entries`` (not seen before in this flush) candidates of the app's pool."""
        entries = [e for e in entries if e.replica_id not in self.seen]
        self.seen.update(e.replica_id for e in entries)
        self.popped.setdefault(app_id, []).extend(entries)
        pool = self.pools.get(app_id)
        self.pools[app_id] = deque(sorted([*pool, *entries]) if pool else entries)
        return entries

    def _look_up(self, app: AppInfo, host: HostRef, n: int) -> bool:
        """Add unsent replicas this host may take straight from the database (once per app
        and host in a flush); returns whether any were found."""
        if self.failed or (app.id, host.id) in self.looked:
            return False
        self.looked.add((app.id, host.id))
        sql = self.sql
        seen, seen_params = ("", [])
        if self.seen:
            ids, seen_params = sql.ids(sorted(self.seen))
            seen = f"AND NOT (r.id {ids})"
        hr, hr_params = ("", [])
        if app.homogeneous_redundancy:
            hr, hr_params = "AND w.hr_class IN ('', %s)", [host.platform_class]
        rows = sql.execute(
            sql.format(FOR_HOST, seen=seen, hr=hr),
            [app.id, *seen_params, *hr_params, host.id, host.user_id, n + OVERFETCH],
        )
        entries = self._add(
            app.id,
            [
                feeder.Entry(feeder.score(prio, wu, ordinal), rid, wu)
                for rid, wu, ordinal, prio in rows
            ],
        )
        self._load(entries)
        return bool(entries)

    def _load(self, entries: list[feeder.Entry]) -> None:
        statement = self._load_statement(entries)
        if statement is not None:
            self.loaded(self.sql.execute(*statement))

    def _load_statement(self, entries: list[feeder.Entry]) -> tuple[str, list] | None:
        if not entries:
            return None
        sql = self.sql
        ids, params = sql.ids(sorted({e.replica_id for e in entries}))
        wus, wu_params = sql.ids(sorted({e.workunit_id for e in entries}))
        hosts, host_params = sql.ids(self.host_ids)
        users, user_params = sql.ids(self.user_ids)
        return (
            sql.format(CANDIDATES, ids=ids, wus=wus, hosts=hosts, users=users),
            [*params, ServerState.UNSENT, *wu_params, *host_params, *user_params],
        )

    def loaded(self, rows: list[tuple]) -> None:
        """Take in what the read of candidates returned."""
        for row in rows:
            replica_id, wu_id = row[0], row[1]
            if replica_id is None:
                host_id, user_id = row[9], row[10]
                if host_id is not None:
                    self.held_by_host.add((host_id, wu_id))
                if user_id is not None:
                    self.held_by_user.add((user_id, wu_id))
                continue
            self.unsent.add(replica_id)
            if wu_id not in self.workunits:
                mask, canonical, hr_class, name, input_json, delay, how = row[2:9]
                finished = bool(mask) or canonical is not None
                self.workunits[wu_id] = WorkUnitRow(
                    finished, hr_class, name, input_json, delay, how
                )

    # --- taking -------------------------------------------------------------------------------

    def take(self, app: AppInfo, host: HostRef, n: int) -> list[tuple[int, int]]:
        """Up to ``n`` (replica, work unit) pairs of ``app`` this host may take, in the
        cache's order."""
        got: list[tuple[int, int]] = []
        # The cache held entries, but none this host could take: others' (passed) or stale.
        starved = False
        while True:
            pool = self.pools.get(app.id) or deque()
            passed: list[feeder.Entry] = []  # left for other hosts, in order
            while pool and len(got) < n:
                entry = pool.popleft()
                wu = self.workunits.get(entry.workunit_id)
                if wu is None or wu.finished or entry.replica_id not in self.unsent:
                    starved = True
                    continue  # stale: dropped
                if not self._may_take(app, host, entry.workunit_id, wu):
                    passed.append(entry)
                    continue
                self._hold(app, host, entry.workunit_id, wu)
                got.append((entry.replica_id, entry.workunit_id))
            pool.extendleft(reversed(passed))
            self.pools[app.id] = pool
            starved = starved or bool(passed)
            if len(got) >= n:
                return got
            if self._more(app, n - len(got)):
                continue
            if not starved or not self._look_up(app, host, n - len(got)):
                return got

    def _may_take(self, app: AppInfo, host: HostRef, wu_id: int, wu: WorkUnitRow) -> bool:
        if (host.id, wu_id) in self.held_by_host:
            return False
        if host.user_id is not None and (host.user_id, wu_id) in self.held_by_user:
            return False
        return not app.homogeneous_redundancy or wu.hr_class in ("", host.platform_class)

    def _hold(self, app: AppInfo, host: HostRef, wu_id: int, wu: WorkUnitRow) -> None:
        self.held_by_host.add((host.id, wu_id))
        if host.user_id is not None:
            self.held_by_user.add((host.user_id, wu_id))
        if app.homogeneous_redundancy and wu.hr_class == "":
            wu.hr_class = host.platform_class
            self.classed.add(wu_id)

    # --- what the lease needs -------------------------------------------------------------------

    def workunit(self, wu_id: int) -> WorkUnitRow:
        return self.workunits[wu_id]

    def claimed_here(self, wu_id: int) -> bool:
        """Was the work unit's platform class chosen by this flush (and so still to claim)?"""
        return wu_id in self.classed

    def replication(self, wu_id: int) -> str:
        return self.workunits[wu_id].replication

    # --- giving back --------------------------------------------------------------------------

    def give_back(self) -> None:
        """Return the candidates nobody took (after the flush committed)."""
        self._push({app_id: pool for app_id, pool in self.pools.items() if pool})

    def give_back_all(self) -> None:
        """Return everything popped (the flush failed: nothing was leased)."""
        self._push(self.popped)

    def _push(self, entries: dict[int, deque[feeder.Entry] | list[feeder.Entry]]) -> None:
        for app_id, pool in entries.items():
            try:
                feeder.push_back(app_id, list(pool), self.queue)
            except Exception:
                # The cache is a hint: the feeder's next pass finds these replicas again.
                log.warning("%d entries not returned to the dispatch cache", len(pool))
