"""Submit a batch of work units: from a JSON Lines file, one input per line, or from a
parameter sweep (``--vary``, as the command-line client's ``batches sweep``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from compute.api.cli import sweep_parameters
from compute.feeder import MAX_PRIORITY
from compute.forms import read_jsonl
from compute.models import App, Project
from compute.submission import create_batch, sweep_inputs


class Command(BaseCommand):
    help = (
        "Create a batch of work units for an app from a JSON Lines file ('-' reads stdin), "
        "or from a parameter sweep: --vary NAME=START:STOP[:STEP] or NAME='[v1, v2]', "
        "repeated, combined by --mode grid (every combination) or zip (in parallel)."
    )
    # Tests hand in a stream; from the shell, '-' reads the process's stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", metavar="PROJECT_SLUG")
        parser.add_argument("app", metavar="APP_NAME")
        parser.add_argument(
            "file", metavar="FILE.jsonl", nargs="?", help="Inputs, one JSON value a line."
        )
        parser.add_argument("--name", help="The batch's name (default: the file's name).")
        parser.add_argument("--priority", type=int, default=0, help="Higher goes out first.")
        parser.add_argument(
            "--vary",
            action="append",
            default=[],
            metavar="NAME=SPEC",
            help="A field that varies, in place of a file: NAME=START:STOP[:STEP] (STOP not "
            "included) or NAME='[v1, v2, ...]'; repeat for more fields.",
        )
        parser.add_argument(
            "--mode",
            default="grid",
            help="How the fields combine: grid (every combination) or zip (in parallel).",
        )
        parser.add_argument("--template", default="{}", help="JSON object: the other fields.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with the slug {options['project']!r}")
        app = App.objects.filter(project=project, name=options["app"]).first()
        if app is None:
            raise CommandError(f"project {project.slug!r} has no app named {options['app']!r}")
        priority = options["priority"]
        if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
            raise CommandError(f"--priority must be between {-MAX_PRIORITY} and {MAX_PRIORITY}")
        path = options["file"]
        if (path is None) == (not options["vary"]):
            raise CommandError("give a JSON Lines file or --vary, one of the two")
        try:
            if path is None:
                inputs = _sweep(options)
            elif path == "-":
                inputs = read_jsonl(_binary(options.get("stdin") or sys.stdin))
            else:
                with open(path, "rb") as stream:
                    inputs = read_jsonl(stream)
            batch = create_batch(
                project,
                app,
                inputs,
                name=options["name"] or _default_name(path, app),
                priority=priority,
            )
        except OSError as e:
            raise CommandError(f"cannot read {path}: {e.strerror or e}") from e
        except ValidationError as e:
            raise CommandError("; ".join(e.messages)) from e
        self.stdout.write(f"batch {batch.id}: {batch.n_workunits} work units")


def _sweep(options: dict[str, Any]) -> list[Any]:
    try:
        template = json.loads(options["template"])
    except json.JSONDecodeError as e:
        raise ValidationError(f"--template is not valid JSON: {e.msg}") from e
    try:
        parameters = sweep_parameters(options["vary"], None, None, None, 1)
    except ValueError as e:
        raise ValidationError(str(e)) from e
    return sweep_inputs(template, parameters, options["mode"])


def _binary(stream: IO[Any]) -> IO[Any]:
    # Read bytes where we can, so a line that is not UTF-8 is reported with its number.
    return getattr(stream, "buffer", stream)


def _default_name(path: str | None, app: App) -> str:
    if path is None or path == "-":
        return f"{app.name} {timezone.now():%Y-%m-%d %H:%M}"
    return Path(path).name[:120]
