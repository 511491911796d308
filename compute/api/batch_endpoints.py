"""API operations on one batch: progress, cancelling, results."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse

from ninja import Query, Router

from compute.api.access import owned_batch
from compute.api.downloads import results_response
from compute.api.output import batch_out
from compute.api.projects import Conflict
from compute.api.schemas import BatchOut, CancelOut, Error, ValidationErrors
from compute.states import BatchState
from compute.submission import cancel_batch

router = Router(tags=["batches"])

ERRORS = {401: Error, 404: Error, 422: ValidationErrors, 429: Error}


@router.get("/{batch_id}", response={200: BatchOut, **ERRORS}, url_name="batch")
def get_batch(request: HttpRequest, batch_id: int) -> dict[str, Any]:
    return batch_out(request, owned_batch(request.auth.user, batch_id))


@router.post(
    "/{batch_id}/cancel",
    response={200: CancelOut, 409: Error, **ERRORS},
    url_name="cancel_batch",
    summary="Cancel a batch: its unfinished work units are withdrawn from volunteers",
)
def cancel(request: HttpRequest, batch_id: int) -> dict[str, Any]:
    batch = owned_batch(request.auth.user, batch_id)
    if batch.state == BatchState.COMPLETED:
        raise Conflict("the batch is already completed")
    cancelled = cancel_batch(batch) if batch.state == BatchState.IN_PROGRESS else 0
    batch.refresh_from_db()
    return {"batch": batch_out(request, batch), "cancelled": cancelled}


@router.get(
    "/{batch_id}/results",
    response={200: None, **ERRORS},
    url_name="batch_results",
    summary="Download the results so far, as JSON Lines or CSV",
    openapi_extra={
        "responses": {
            200: {
                "description": (
                    "One result per work unit assimilated so far, in work unit order: JSON "
                    'Lines of {"workunit", "input", "output"}, or CSV with the columns '
                    "workunit,input,output (input and output as JSON text). The header "
                    "X-Batch-State tells whether more may come."
                ),
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def results(
    request: HttpRequest,
    batch_id: int,
    format: Literal["jsonl", "csv"] = Query("jsonl"),
) -> StreamingHttpResponse:
    return results_response(owned_batch(request.auth.user, batch_id), format)
