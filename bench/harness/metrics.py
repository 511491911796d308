"""What the processes cost, read from /proc, and how the numbers are summarised and printed.

CPU is ``utime + stime`` from /proc/<pid>/stat, summed over a process and (for process trees:
prefork Celery, PostgreSQL) its descendants, as a delta over the measuring window divided by
the window's wall time: 100 % is one core. A thread samples every ``interval`` seconds so
that processes which exit during the window (a recycled prefork child, a PostgreSQL backend)
still count up to their last sample. Memory is the kernel's high-water mark of the resident
set (VmHWM) for a single process; for a tree, whose processes share pages, the peak of the
sampled sum of proportional set sizes (Pss from smaps_rollup).
"""

from __future__ import annotations

import math
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


# --- /proc ----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (the command name may hold spaces and parentheses)."""
    try:
        data = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # utime and stime are fields 14 and 15 of stat(5); ``fields`` starts at field 3.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (field 22)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _threads(pid: int) -> list[Path]:
    """/proc/<pid>/task/<tid> of each thread; none if the process is gone."""
    try:
        return list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return []


def children(pid: int) -> list[int]:
    """Direct children; each thread's list holds the children that thread forked."""
    out: list[int] = []
    for task in _threads(pid):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children(child)
    return found


def _status_kib(pid: int, key: str, name: str = "status") -> int | None:
    try:
        text = (PROC / str(pid) / name).read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def peak_rss_kib(pid: int) -> int | None:
    return _status_kib(pid, "VmHWM")


def pss_kib(pid: int) -> int | None:
    return _status_kib(pid, "Pss", "smaps_rollup")


def run_queue_waits(pid: int) -> dict[int, float]:
    """Seconds each thread of a process has waited on a run queue (ready to run but no CPU
    free), from /proc/<pid>/task/<tid>/schedstat."""
    out: dict[int, float] = {}
    for task in _threads(pid):
        try:
            out[int(task.name)] = int((task / "schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue
    return out


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from the first line of /proc/stat
    (guest time is already in user time)."""
    fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def uptime_ticks() -> float:
    return float((PROC / "uptime").read_text().split()[0]) * CLK_TCK


def postgres_backend_db(pid: int) -> str | None:
    """The database of a PostgreSQL backend from its process title
    (``postgres: 15/main: user db 127.0.0.1(5432) idle``); None for the server's own
    processes (checkpointer, WAL writer, autovacuum, ...)."""
    title = command_line(pid)
    match = re.match(r"postgres: (?:\S+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])", title)
    return match.group(1) if match else None


# --- Sampling -------------------------------------------------------------------------------


@dataclass
class Watched:
    """A row of the table: one process, or a tree of them (``tree``), optionally only the
    descendants ``select`` keeps."""

    name: str
    role: str
    pid: int
    tree: bool = False
    select: Callable[[int], bool] | None = None
    detail: str = ""


@dataclass
class Usage:
    name: str
    role: str
    pid: int
    cpu_percent: float
    wait_percent: float
    peak_rss_mib: float | None
    rss_kind: str
    processes: int
    detail: str = ""
    cpu_s: float = 0.0  # Δ(utime + stime) over the window, in seconds


@dataclass
class _Track:
    watched: Watched
    base: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    wait_base: dict[int, float] = field(default_factory=dict)
    wait_last: dict[int, float] = field(default_factory=dict)
    peak_pss: int = 0
    seen: set[int] = field(default_factory=set)


class Sampler(threading.Thread):
    """Samples the CPU time (and, for trees, the Pss) of every watched row."""

    def __init__(self, watched: Sequence[Watched], interval: float = 0.5) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.interval = interval
        self._tracks = [_Track(w) for w in watched]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._window_start: tuple[float, float] | None = None  # (monotonic, boot ticks)
        self._jiffies_start = (0, 0)

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _pids(self, w: Watched) -> list[int]:
        if not w.tree:
            return [w.pid]
        rest = descendants(w.pid)
        return [w.pid] + [p for p in rest if w.select is None or w.select(p)]

    def sample(self) -> None:
        with self._lock:
            started = self._window_start
            for track in self._tracks:
                pids = self._pids(track.watched)
                pss = 0
                for pid in pids:
                    cpu = cpu_seconds(pid)
                    if cpu is None:
                        continue
                    if started is not None and pid not in track.base:
                        # A process born inside the window counts from zero; one that existed
                        # before but is seen only now counts from here.
                        born = start_ticks(pid) or 0
                        track.base[pid] = 0.0 if born >= started[1] else cpu
                    track.last[pid] = cpu
                    track.seen.add(pid)
                    for tid, waited in run_queue_waits(pid).items():
                        if started is not None and tid not in track.wait_base:
                            track.wait_base[tid] = 0.0  # a thread started in the window
                        track.wait_last[tid] = waited
                    if track.watched.tree:
                        pss += pss_kib(pid) or 0
                track.peak_pss = max(track.peak_pss, pss)

    def start_window(self) -> None:
        with self._lock:
            self._window_start = (time.monotonic(), uptime_ticks())
            self._jiffies_start = cpu_jiffies()
            for track in self._tracks:
                track.base.clear()
                track.wait_base.clear()
                track.seen.clear()
                for pid in self._pids(track.watched):
                    cpu = cpu_seconds(pid)
                    if cpu is not None:
                        track.base[pid] = track.last[pid] = cpu
                    for tid, waited in run_queue_waits(pid).items():
                        track.wait_base[tid] = track.wait_last[tid] = waited
        if not self.is_alive():
            self.start()

    def end_window(self) -> tuple[float, float, list[Usage]]:
        """The window's wall time, the share of all CPUs busy in it (anyone's work) and each
        row's usage; call while the processes live."""
        self.sample()
        self._stop.set()
        with self._lock:
            assert self._window_start is not None, "start_window() first"
            wall = time.monotonic() - self._window_start[0]
            busy, total = (b - a for a, b in zip(self._jiffies_start, cpu_jiffies(), strict=True))
            return (
                wall,
                busy / total if total else 0.0,
                [self._usage(t, wall) for t in self._tracks],
            )

    @staticmethod
    def _usage(track: _Track, wall: float) -> Usage:
        w = track.watched
        cpu = sum(track.last[p] - track.base.get(p, track.last[p]) for p in track.last)
        waited = sum(
            track.wait_last[t] - track.wait_base.get(t, track.wait_last[t]) for t in track.wait_last
        )
        if w.tree:
            peak = track.peak_pss / 1024 if track.peak_pss else None
            kind = "peak sum of Pss, sampled"
        else:
            hwm = peak_rss_kib(w.pid)
            peak = hwm / 1024 if hwm is not None else None
            kind = "VmHWM"
        return Usage(
            w.name,
            w.role,
            w.pid,
            100.0 * cpu / wall if wall > 0 else 0.0,
            100.0 * waited / wall if wall > 0 else 0.0,
            peak,
            kind,
            max(1, len(track.seen)),
            w.detail,
            cpu,
        )


# --- Summaries ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = (PROC / "loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
    }


# --- The table ------------------------------------------------------------------------------

HEADER = ("section", "item", "value", "detail")


def render_table(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """Plain text, aligned: the section only where it changes, values right-aligned."""
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(4)]

    def line(row: tuple[str, str, str, str]) -> str:
        section, item, value, detail = row
        return (
            f"{section:<{widths[0]}}  {item:<{widths[1]}}  {value:>{widths[2]}}  {detail}"
        ).rstrip()

    rule = "-" * (sum(widths[:3]) + 6 + min(widths[3], 50))
    out = [line(HEADER), rule]
    previous = None
    for row in rows:
        if previous is not None and row[0] != previous:
            out.append("")
        out.append(line((row[0] if row[0] != previous else "", *row[1:])))
        previous = row[0]
    return "\n".join(out)


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"
