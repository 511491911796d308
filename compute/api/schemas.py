"""The API's request and response bodies (and so its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator, ConfigDict, create_model

from compute.api.bounds import setting
from compute.feeder import MAX_PRIORITY
from compute.models import App, Project

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


# The numbers an owner sets on a project and on an app; their bounds, defaults and
# descriptions come from the models' fields (compute.api.bounds).
PROJECT_NUMBERS: dict[str, Any] = {
    "min_quorum": Integer,
    "target_nresults": Integer,
    "max_error_results": Integer,
    "max_total_results": Integer,
    "max_success_results": Integer,
    "delay_bound": Integer,
    "max_deadline_extension": Integer,
    "daily_quota_per_core": Integer,
}
APP_NUMBERS: dict[str, Any] = {
    "tolerance": float,
    "spot_check_rate": float,
    "min_memory_mb": Integer,
    "min_cores": Integer,
}


def _numbers(name: str, model: type, types: dict[str, Any], *, partial: bool) -> type[StrictIn]:
    fields = {field: setting(model, field, kind, partial=partial) for field, kind in types.items()}
    return create_model(name, __base__=StrictIn, **fields)


ProjectNumbers = _numbers("ProjectNumbers", Project, PROJECT_NUMBERS, partial=False)
ProjectNumbersUpdate = _numbers("ProjectNumbersUpdate", Project, PROJECT_NUMBERS, partial=True)
AppNumbers = _numbers("AppNumbers", App, APP_NUMBERS, partial=False)
AppNumbersUpdate = _numbers("AppNumbersUpdate", App, APP_NUMBERS, partial=True)


class ProjectIn(ProjectNumbers):
    slug: str = Field(
        min_length=1,
        max_length=50,
        pattern=SLUG,
        description="Letters, digits, - and _: the project's address, fixed once created.",
    )
    name: str = Field(min_length=1, max_length=120)
    description: str = Text
    is_public: bool = Field(True, description="Listed on the home page for volunteers.")


class ProjectUpdate(ProjectNumbersUpdate):
    """Only the fields sent change; the slug is fixed."""

    name: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=5000)
    is_public: bool | None = Field(None, description="Listed on the home page for volunteers.")


class VersionOut(Schema):
    version: int
    kernel_sha256: str
    wasm_sha256: str
    deprecated: bool
    created_at: datetime


class AppIn(AppNumbers):
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
    comparator_path: str = Field(
        "", max_length=200, description="Dotted path of f(a, b) -> bool, for 'custom'."
    )
    adaptive_replication: bool = False
    homogeneous_redundancy: bool = False
    needs_wasm: bool = False


class AppUpdate(AppNumbersUpdate):
    """Only the fields sent change; the name, the code paths and the comparator are fixed."""

    title: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=5000)
    adaptive_replication: bool | None = None
    homogeneous_redundancy: bool | None = None
    needs_wasm: bool | None = None


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
    spot_check_rate: float
    homogeneous_redundancy: bool
    min_memory_mb: int
    min_cores: int
    needs_wasm: bool
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
    max_deadline_extension: int
    daily_quota_per_core: int
    url: str = Field(description="The project's public page, where volunteers press Start.")
    dashboard_url: str
    apps: list[AppOut]


class RangeIn(StrictIn):
    start: float = Field(ge=-SWEEP_BOUND, le=SWEEP_BOUND)
    stop: float = Field(
        ge=-SWEEP_BOUND, le=SWEEP_BOUND, description="Not included, as in Python's range."
    )
    step: float = Field(1, ge=-SWEEP_BOUND, le=SWEEP_BOUND, description="Not zero.")


class SweepIn(StrictIn):
    """One parameter over a range (``parameter``, ``start``, ``stop``, ``step``), or several
    (``parameters``, each a list of values or a range) combined by ``mode``."""

    name: str = Field("", max_length=120, description="Default: the app's name and the time.")
    priority: Integer = Field(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    template: dict[str, Any] = Field(
        default_factory=dict, description="The fields every input shares."
    )
    parameter: str | None = Field(
        None, min_length=1, max_length=100, description="The one field that varies."
    )
    start: float | None = Field(None, ge=-SWEEP_BOUND, le=SWEEP_BOUND)
    stop: float | None = Field(
        None, ge=-SWEEP_BOUND, le=SWEEP_BOUND, description="Not included, as in Python's range."
    )
    step: float = Field(1, ge=-SWEEP_BOUND, le=SWEEP_BOUND, description="Not zero.")
    parameters: dict[str, list[Any] | RangeIn] | None = Field(
        None,
        description=(
            "The fields that vary, in place of parameter: each a list of values or a range "
            '(e.g. {"lo": {"start": 1, "stop": 10001, "step": 1000}, "seed": [1, 2, 3]}).'
        ),
    )
    mode: Literal["grid", "zip"] = Field(
        "grid",
        description=(
            "How parameters combine: grid, every combination (the first varies slowest); "
            "zip, the i-th values of each together (equally many values each)."
        ),
    )


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
