"""Queue depths and the last hour's throughput per project, like ``boinccmd``'s status."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compute.dashboard import GridStatus, ProjectStatus, grid_status
from compute.models import Project

# (heading, attribute, width) of each column after the project's slug.
COLUMNS = [
    ("unsent", "unsent", 9),
    ("in prog", "in_progress", 9),
    ("validate", "need_validate", 9),
    ("assim", "assimilate_ready", 9),
    ("err/h", "replica_errors", 7),
    ("fail/h", "failed_workunits", 7),
    ("recv/h", "received", 8),
    ("valid/h", "validated", 8),
    ("done/h", "assimilated", 8),
    ("credit/h", "credit", 11),
    ("hosts/h", "hosts_reporting", 8),
]
LEGEND = (
    "unsent, in prog: replicas waiting to be sent and out on hosts; validate, assim: work units"
    " awaiting validation and assimilation; /h: in the last hour (errors are replica errors,"
    " fail are failed work units, hosts are hosts that returned a replica)."
)


class Command(BaseCommand):
    help = "Show queue depths, backlogs and the last hour's throughput per project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", metavar="SLUG", help="Only this project.")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print JSON instead of a table."
        )

    def handle(self, *args: Any, project: str | None, as_json: bool, **options: Any) -> None:
        projects = None
        if project:
            projects = list(Project.objects.filter(slug=project))
            if not projects:
                raise CommandError(f"no project with the slug {project!r}")
        status = grid_status(projects)
        if as_json:
            self.stdout.write(json.dumps(status.as_dict(), indent=2))
        else:
            self.stdout.write(render_table(status))


def _cell(row: ProjectStatus, attribute: str, width: int) -> str:
    value = getattr(row, attribute)
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    return text.rjust(width)


def render_table(status: GridStatus) -> str:
    name_width = max([len("project"), *(len(p.slug) for p in status.projects)]) + 2
    header = "project".ljust(name_width) + "".join(h.rjust(w) for h, _, w in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in status.projects:
        slug = row.slug + ("" if row.is_active else " *")
        lines.append(slug.ljust(name_width) + "".join(_cell(row, a, w) for _, a, w in COLUMNS))
    if not status.projects:
        lines.append("(no projects)")
    if len(status.projects) > 1:
        totals = status.totals
        cells = "".join(
            _cell(totals, a, w) if a != "hosts_reporting" else "-".rjust(w) for _, a, w in COLUMNS
        )
        lines += ["-" * len(header), "all".ljust(name_width) + cells]
    lines += [
        "",
        f"hosts active in the last hour (any project): {status.hosts_active}",
        f"validation backlog: {status.totals.need_validate} work units; "
        f"assimilation backlog: {status.totals.assimilate_ready} work units",
        f"as of {status.now:%Y-%m-%d %H:%M:%S %Z}"
        + ("; * inactive project" if any(not p.is_active for p in status.projects) else ""),
        "",
        textwrap.fill(LEGEND, len(header)),
    ]
    return "\n".join(lines)
