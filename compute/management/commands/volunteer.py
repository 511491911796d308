"""Compute for a project from the command line: a volunteer without a browser.

Speaks the browser worker's protocol and runs each app's Python reference instead of its
JavaScript kernel, in a pool of worker processes. For tests, benchmarks and operators.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compute.dotted import resolve
from compute.headless import HeadlessVolunteer, Summary
from compute.headless.references import parse_reference
from compute.protocol import SLUG_RE

MAX_WORKERS = 256  # capabilities.cores in docs/protocol.schema.json


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise ValueError(text)
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


class Command(BaseCommand):
    help = "Compute a project's work with the apps' Python references, as a volunteer host."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            default=f"ws://127.0.0.1:{os.environ.get('PORT', '8000')}/ws/worker/",
            help="The server's volunteer WebSocket (default: %(default)s).",
        )
        parser.add_argument(
            "--project",
            required=True,
            metavar="SLUG",
            help="The project to compute for, as an anonymous host (as the embeddable "
            "plugin does).",
        )
        parser.add_argument(
            "--workers",
            type=_positive(int),
            default=os.cpu_count() or 1,
            metavar="N",
            help="Worker processes, reported as the host's cores (default: %(default)s, "
            "at most 256).",
        )
        parser.add_argument(
            "--state",
            metavar="FILE",
            help="Where the host id and token are kept, so that a restart is the same host "
            "and resumes its work (default: volunteer-<project>.json in the var directory).",
        )
        parser.add_argument(
            "--reference",
            action="append",
            default=[],
            metavar="APP=dotted.path",
            help="Run this function for the app's tasks (repeatable); the example apps' "
            "references are known already.",
        )
        parser.add_argument(
            "--max-tasks",
            type=_positive(int),
            metavar="K",
            help="Stop once K tasks are reported and acknowledged (results or errors).",
        )
        parser.add_argument(
            "--until-idle",
            type=_positive(float),
            metavar="SECONDS",
            help="Stop after holding no work for this long.",
        )
        parser.add_argument(
            "--cpu-time-scale",
            type=_positive(float),
            default=1.0,
            metavar="X",
            help="Report X times the CPU time measured (to stand in for a slower host).",
        )
        parser.add_argument(
            "--benchmark",
            type=_positive(float),
            metavar="FPOPS",
            help="Floating-point operations per second per core to report, instead of "
            "measuring them.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = options["project"]
        if not SLUG_RE.match(project):
            raise CommandError(f"{project!r} is not a project slug")
        if options["workers"] > MAX_WORKERS:
            raise CommandError(f"--workers: the protocol allows at most {MAX_WORKERS} cores")
        references = dict(self._reference(text) for text in options["reference"])
        state = Path(options["state"] or settings.VAR_DIR / f"volunteer-{project}.json")
        logging.getLogger("compute.headless").setLevel(
            {0: logging.WARNING, 1: logging.INFO}.get(options["verbosity"], logging.DEBUG)
        )
        try:
            volunteer = HeadlessVolunteer(
                options["url"],
                project,
                workers=options["workers"],
                state_path=state,
                references=references,
                max_tasks=options["max_tasks"],
                until_idle=options["until_idle"],
                cpu_time_scale=options["cpu_time_scale"],
                benchmark_fpops=options["benchmark"],
            )
        except ValueError as e:
            raise CommandError(str(e)) from e
        summary = asyncio.run(_run(volunteer))
        self.stdout.write(summary.line())
        if summary.fatal:
            raise CommandError(summary.fatal)

    @staticmethod
    def _reference(text: str) -> tuple[str, str]:
        try:
            app, path = parse_reference(text)
            resolve(path)
        except (ValueError, ImportError) as e:
            raise CommandError(f"--reference {text}: {e}") from e
        return app, path


async def _run(volunteer: HeadlessVolunteer) -> Summary:
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        # A second Ctrl-C gets Python's default: KeyboardInterrupt, at once.
        loop.remove_signal_handler(signal.SIGINT)
        volunteer.stop("interrupted")

    loop.add_signal_handler(signal.SIGINT, interrupted)
    loop.add_signal_handler(signal.SIGTERM, volunteer.stop, "terminated")
    return await volunteer.run()
