"""The production shape: the command of each process type, read from the top-level Procfile.

The Procfile is the one place where the command of a web process, a Celery worker and beat
is written (docs/deploy.md quotes it verbatim). Operators run it with honcho, or with
``python -m socialgrid.procfile TYPE`` (what the systemd units of docs/deploy.md start);
every bench and the tests that start real processes take their commands from here too, so
what is measured is what an operator runs. A process differs from another of its type only
by its environment: ``HOST`` and ``PORT`` for a web process, ``WORKER`` for a worker,
``BEAT_SCHEDULE`` for beat.

A line is run as ``sh -c LINE``, as honcho and foreman do: the shell expands the variables
and the line's ``exec`` replaces the shell, so the pid started is the server's own (signals
reach it directly, and /proc figures are its own).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "Procfile"
WEB_APP = "socialgrid.asgi:application"


class ProcfileError(RuntimeError):
    pass


def read(path: Path = PROCFILE) -> dict[str, str]:
    """Process type -> command line, in the file's order (blank lines and ``#`` comments
    skipped)."""
    types: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip().replace("_", "").replace("-", "").isalnum():
            raise ProcfileError(f"{path}:{number}: not 'type: command': {raw!r}")
        if name.strip() in types:
            raise ProcfileError(f"{path}:{number}: process type {name.strip()!r} given twice")
        types[name.strip()] = command.strip()
    return types


def line(process_type: str, path: Path = PROCFILE) -> str:
    types = read(path)
    try:
        return types[process_type]
    except KeyError:
        raise ProcfileError(f"{path} has no {process_type!r} process type") from None


def argv(process_type: str, path: Path = PROCFILE) -> list[str]:
    """What to start for one process of ``process_type`` (with :func:`environment`)."""
    return ["sh", "-c", line(process_type, path)]


def web_argv_for(app: str, path: Path = PROCFILE) -> list[str]:
    """The web command with another ASGI application in place of socialgrid's, every option
    kept: for measuring what uvicorn itself costs."""
    command = line("web", path)
    if command.count(WEB_APP) != 1:
        raise ProcfileError(f"the web command names {WEB_APP} not exactly once: {command!r}")
    return ["sh", "-c", command.replace(WEB_APP, app)]


def environment(base: Mapping[str, str], **variables: object) -> dict[str, str]:
    """``base`` plus the process's own variables (``PORT=8001``, ``WORKER=2`` ...), with this
    Python's scripts directory first on PATH: the Procfile names ``uvicorn`` and ``celery``,
    and they must be the ones installed next to this interpreter (the project's virtual
    environment), whatever the caller's PATH."""
    env = dict(base)
    env.update({name: str(value) for name, value in variables.items()})
    scripts = str(Path(sys.executable).parent)
    rest = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != scripts]
    env["PATH"] = os.pathsep.join([scripts, *rest])
    return env


def main(args: list[str] | None = None) -> None:
    """``python -m socialgrid.procfile TYPE``: become that process (the shell, then the
    server), in this environment."""
    args = sys.argv[1:] if args is None else args
    types = read()
    if len(args) != 1 or args[0] not in types:
        sys.exit(f"usage: python -m socialgrid.procfile {{{'|'.join(types)}}}")
    command = argv(args[0])
    os.execvpe(command[0], command, environment(os.environ))


if __name__ == "__main__":
    main()
