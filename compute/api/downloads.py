"""A batch's results as a streamed download: JSON Lines or CSV.

The rows come from :func:`compute.submission.iter_outputs` (assimilated outputs in work unit
order, read in chunks), so a batch of a million results never sits in memory. The format is
the one ``manage.py export_results`` writes:

- JSON Lines: ``{"workunit": name, "input": ..., "output": ...}`` a line;
- CSV: a header ``workunit,input,output``, then one row per result with the input and
  output as JSON text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse

from compute.models import Batch
from compute.submission import iter_outputs

FORMATS = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
CSV_COLUMNS = ["workunit", "input", "output"]
# Rows per chunk written to the socket: fewer, larger writes.
ROWS_PER_CHUNK = 200


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def jsonl_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    lines = []
    for row in rows:
        lines.append(_json(row) + "\n")
        if len(lines) >= ROWS_PER_CHUNK:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def csv_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for n, row in enumerate(rows, start=1):
        writer.writerow([row["workunit"], _json(row["input"]), _json(row["output"])])
        if n % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def results_response(batch: Batch, fmt: str) -> StreamingHttpResponse:
    chunks = csv_chunks if fmt == "csv" else jsonl_chunks
    response = StreamingHttpResponse(chunks(iter_outputs(batch)), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.id}.{fmt}"'
    # Partial results are allowed while the batch runs; say so.
    response["X-Batch-State"] = batch.state
    response["X-Content-Type-Options"] = "nosniff"
    return response
