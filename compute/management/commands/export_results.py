"""Write the assimilated outputs of a batch as JSON Lines or CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from compute.models import Batch
from compute.states import BatchState
from compute.submission import iter_outputs

CSV_COLUMNS = ["workunit", "input", "output"]


class Command(BaseCommand):
    help = "Export the results of a batch (its assimilated outputs) to stdout or a file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("batch_id", metavar="BATCH_ID", type=int)
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")

    def handle(
        self, *args: Any, batch_id: int, format: str, output: str | None, **options: Any
    ) -> None:
        batch = Batch.objects.filter(id=batch_id).first()
        if batch is None:
            raise CommandError(f"no batch with the id {batch_id}")
        rows = iter_outputs(batch)
        try:
            with self._open(output) as stream:
                n = write_csv(rows, stream) if format == "csv" else write_jsonl(rows, stream)
        except OSError as e:
            raise CommandError(f"cannot write {output}: {e.strerror or e}") from e
        # The summary goes to stderr so that stdout holds only the data.
        note = f"{n} results of batch {batch.id} ({batch.n_workunits} work units"
        note += ", still in progress)" if batch.state == BatchState.IN_PROGRESS else ")"
        self.stderr.write(note + (f" written to {output}" if output else ""))

    @contextmanager
    def _open(self, output: str | None) -> Iterator[IO[str] | _Unended]:
        if not output:
            yield _Unended(self.stdout)
            return
        with open(output, "w", encoding="utf-8", newline="") as stream:
            yield stream


class _Unended:
    """The command's stdout, without the line ending OutputWrapper adds to each write."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_jsonl(rows: Iterator[dict[str, Any]], stream: IO[str] | _Unended) -> int:
    n = 0
    for row in rows:
        stream.write(_json(row) + "\n")
        n += 1
    return n


def write_csv(rows: Iterator[dict[str, Any]], stream: IO[str] | _Unended) -> int:
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([row["workunit"], _json(row["input"]), _json(row["output"])])
        n += 1
    return n
