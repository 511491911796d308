"""Running the apps' Python references in worker processes.

References are CPU-bound Python, so each runs in a process of a ProcessPoolExecutor and the
CPU time reported is that process's own, measured around the call. Workers are started with
``spawn``: forking the volunteer (an event loop, resolver and executor threads) could copy
a lock some thread held, and a spawned worker costs only the imports its reference needs.
As with any spawned pool, a script that runs a volunteer needs an
``if __name__ == "__main__":`` guard (manage.py has one).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import AppRegistryNotReady

from compute.dotted import resolve

MAX_REASON = 500


def default_references(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """App name -> dotted path of its reference: the example apps, then ``overrides``."""
    from compute.examples import EXAMPLES

    table = {name: example.reference_path for name, example in EXAMPLES.items()}
    table.update(overrides or {})
    return table


def parse_reference(text: str) -> tuple[str, str]:
    """``APP=dotted.path`` as given on the command line."""
    app, sep, path = text.partition("=")
    app, path = app.strip(), path.strip()
    if not sep or not app or "." not in path:
        raise ValueError(f"{text!r} is not APP=dotted.path")
    return app, path


def describe(error: BaseException) -> str:
    """An exception as the one line a project owner reads: ``ValueError: bad input``."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    return text[:MAX_REASON]


@dataclass(frozen=True)
class Computed:
    """What a worker sends back: the output, or the reason it failed, and its CPU time."""

    ok: bool
    output: Any = None
    reason: str = ""
    cpu_time: float = 0.0


def _load(path: str) -> Any:
    try:
        return resolve(path)
    except AppRegistryNotReady:
        # The reference's module imports models: only then pay for setting Django up (most
        # references are plain Python and start in a few milliseconds without it).
        import django

        django.setup()
        return resolve(path)


def compute(path: str, data: Any) -> Computed:
    """Run one reference on one input; runs in a worker process."""
    start = time.process_time()
    try:
        function = _load(path)
    except Exception as e:
        return Computed(False, reason=describe(e), cpu_time=time.process_time() - start)
    start = time.process_time()
    try:
        output = function(data)
    except Exception as e:
        return Computed(False, reason=describe(e), cpu_time=time.process_time() - start)
    return Computed(True, output=output, cpu_time=time.process_time() - start)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the volunteer decides what happens to running
    # work and stops the workers itself, without a traceback from each of them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ReferencePool:
    """A process pool for references, created on first use and replaced when it breaks.

    Each pool gets a generation number, so that of several computations failing with one
    broken pool only the first replaces it, and not the pool started after it."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.generation = 0
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self.generation += 1
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        return self._pool

    def submit(self, path: str, data: Any) -> tuple[asyncio.Future[Computed], int]:
        """Start ``compute(path, data)``; returns its future and the pool's generation."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor(), compute, path, data)
        except BrokenProcessPool:
            self.discard()
            future = loop.run_in_executor(self._executor(), compute, path, data)
        return future, self.generation

    def discard(self, generation: int | None = None) -> None:
        """Stop the pool (of ``generation``, if given); the next submit starts a new one."""
        if generation is not None and generation != self.generation:
            return
        pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool)

    def close(self) -> None:
        self.discard()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, abandoning whatever its workers are running.

    ``shutdown`` alone waits for running calls to return; before Python 3.14 there is no
    public way to stop a worker, so the processes are terminated through the pool's map.

    The pool's manager thread is taken before ``shutdown``, which forgets it: with its
    workers gone it closes the pool's pipes and ends, and it must have ended before the
    interpreter exits, whose hook writes to one of those pipes without a lock (on Python
    3.11 that raced with the close: "Bad file descriptor" at exit, after a Ctrl-C). Joining
    it also keeps it from touching an event loop that is about to close."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
    if manager is not None:
        manager.join(timeout=10)
