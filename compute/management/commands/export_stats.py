"""Write today's statistics files for third-party stats sites (docs/stats-export.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compute.api.stats_export import default_directory, export_stats


class Command(BaseCommand):
    help = (
        "Export users (who consented), teams and hosts as BOINC-style gzipped XML into "
        "DIR/stats_YYYY_MM_DD/ and point DIR/stats at it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            metavar="DIR",
            help="Where the dated directories go (default: STATS_EXPORT_DIR or var/stats).",
        )

    def handle(self, *args: Any, output: str | None, **options: Any) -> None:
        directory = Path(output) if output else default_directory()
        try:
            summary = export_stats(directory)
        except OSError as e:
            raise CommandError(f"cannot write to {directory}: {e.strerror or e}") from e
        self.stdout.write(
            f"{summary.users} users, {summary.teams} teams, {summary.hosts} hosts "
            f"written to {summary.directory}"
        )
