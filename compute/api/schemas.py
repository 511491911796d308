"""The API's request and response bodies (and so its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator, ConfigDict

from compute.feeder import MAX_PRIORITY

SLUG = r"^[-a-zA-Z0-9_]+$"
NO_NUL = r"^[^\x00]*$"
SWEEP_BOUND = 1e15


def _whole(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer; strict pydantic would not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(_whole)]
Text = Field(default="", max_length=5000)


class Error(Schema):
    detail: str = Field(description="What went wrong, for a person to read.")


class ValidationErrors(Schema):
    detail: list[dict[str, Any]] = Field(
        description="Each problem: loc (where), msg (what), type (its kind)."
    )


class StrictIn(Schema):
    # No coercion: "2" is not a number and 0 is not false. A client that sends the wrong
    # type learns so instead of getting a guess.
    model_config = ConfigDict(strict=True)


class ProjectIn(StrictIn):
    slug: str = Field(
        min_length=1,
        max_length=50,
        pattern=SLUG,
        description="Letters, digits, - and _: the project's address, fixed once created.",
    )
    name: str = Field(min_length=1, max_length=120)
    description: str = Text
    is_public: bool = Field(True, description="Listed on the home page for volunteers.")
    min_quorum: Integer = Field(2, ge=1, le=20, description="Agreeing results a work unit needs.")
    target_nresults: Integer = Field(2, ge=1, le=20, description="Replicas sent out at first.")
    max_error_results: Integer = Field(3, ge=1, le=100)
    max_total_results: Integer = Field(8, ge=1, le=100)
    max_success_results: Integer = Field(5, ge=1, le=100)
    delay_bound: Integer = Field(
        3600, ge=60, le=30 * 86400, description="Seconds a volunteer has to return a replica."
    )


class VersionOut(Schema):
    version: int
    kernel_sha256: str
    wasm_sha256: str
    deprecated: bool
    created_at: datetime


class AppIn(StrictIn):
    name: str = Field(min_length=1, max_length=50, pattern=SLUG)
    title: str = Field(min_length=1, max_length=120)
    description: str = Text
    reference_path: str = Field(
        min_length=1,
        max_length=200,
        description="Dotted path of the Python reference run(input) -> output.",
        examples=["apps.collatz.run"],
    )
    assimilator_path: str = Field(
        "compute.assimilation.store_output",
        min_length=1,
        max_length=200,
        description="Dotted path of handler(workunit, output); the default keeps the output.",
    )
    comparator: Literal["exact", "numeric", "custom"] = "exact"
    tolerance: float = Field(
        1e-9, ge=0, le=1e6, description="Relative and absolute tolerance of 'numeric'."
    )
    comparator_path: str = Field(
        "", max_length=200, description="Dotted path of f(a, b) -> bool, for 'custom'."
    )
    adaptive_replication: bool = False
    spot_check_rate: float = Field(0.1, ge=0, le=1)
    homogeneous_redundancy: bool = False
    min_memory_mb: Integer = Field(0, ge=0, le=1_000_000)
    needs_wasm: bool = False


class AppOut(Schema):
    name: str
    title: str
    description: str
    comparator: str
    tolerance: float
    comparator_path: str
    reference_path: str
    assimilator_path: str
    adaptive_replication: bool
    current_version: VersionOut | None


class ProjectOut(Schema):
    slug: str
    name: str
    description: str
    is_public: bool
    is_active: bool
    created_at: datetime
    min_quorum: int
    target_nresults: int
    max_error_results: int
    max_total_results: int
    max_success_results: int
    delay_bound: int = Field(description="Seconds a volunteer has to return a replica.")
    url: str = Field(description="The project's public page, where volunteers press Start.")
    dashboard_url: str
    apps: list[AppOut]


class SweepIn(StrictIn):
    name: str = Field("", max_length=120, description="Default: the app's name and the time.")
    priority: Integer = Field(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    template: dict[str, Any] = Field(
        default_factory=dict, description="The fields every input shares."
    )
    parameter: str = Field(min_length=1, max_length=100, description="The field that varies.")
    start: float = Field(ge=-SWEEP_BOUND, le=SWEEP_BOUND)
    stop: float = Field(
        ge=-SWEEP_BOUND, le=SWEEP_BOUND, description="Not included, as in Python's range."
    )
    step: float = Field(ge=-SWEEP_BOUND, le=SWEEP_BOUND, description="Not zero.")


class BatchOut(Schema):
    id: int
    project: str
    app: str
    name: str
    state: Literal["in_progress", "completed", "cancelled"]
    priority: int
    n_workunits: int
    n_assimilated: int
    n_errored: int
    progress: float = Field(description="Share of work units done (assimilated or failed).")
    created_at: datetime
    completed_at: datetime | None
    results_url: str


class CancelOut(Schema):
    batch: BatchOut
    cancelled: int = Field(description="Work units cancelled by this request.")
