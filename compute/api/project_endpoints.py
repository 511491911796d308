"""API operations on projects, apps, app versions and batch submission."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.utils import timezone

from ninja import Path, Query, Router, Status

from compute.api import projects
from compute.api.access import owned_app, owned_project, owned_projects
from compute.api.errors import Forbidden, TooLarge
from compute.api.output import app_out, batch_out, project_out, version_out, with_apps
from compute.api.schemas import (
    NO_NUL,
    SLUG,
    AppIn,
    AppOut,
    AppUpdate,
    BatchOut,
    Error,
    ProjectIn,
    ProjectOut,
    ProjectUpdate,
    SweepIn,
    ValidationErrors,
    VersionOut,
)
from compute.feeder import MAX_PRIORITY
from compute.forms import read_jsonl
from compute.models import Batch, Project
from compute.submission import sweep_inputs

router = Router(tags=["projects"])

ERRORS = {400: Error, 401: Error, 404: Error, 409: Error, 422: ValidationErrors, 429: Error}
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024


# Path parameters that cannot name anything are refused before any query.
PROJECT = Path(..., pattern=SLUG, max_length=50, description="The project's slug.")
APP = Path(..., pattern=SLUG, max_length=50, description="The app's name.")
BATCH_NAME = Query(
    "", max_length=120, pattern=NO_NUL, description="Default: the app's name and the time."
)
BATCH_PRIORITY = Query(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="Higher goes first.")


def _user(request: HttpRequest) -> Any:
    return request.auth.user


@router.get(
    "",
    response={200: list[ProjectOut], 401: Error, 429: Error},
    url_name="projects",
    summary="Your projects",
)
def list_projects(request: HttpRequest) -> list[dict[str, Any]]:
    found = with_apps(owned_projects(_user(request)).order_by("name"))
    return [project_out(request, p) for p in found]


@router.post(
    "",
    response={201: ProjectOut, 403: Error, **ERRORS},
    url_name="create_project",
    summary="Create a project (staff, or the compute.add_project permission)",
)
def create_project(request: HttpRequest, body: ProjectIn) -> Status:
    user = _user(request)
    if not projects.may_create_projects(user):
        raise Forbidden(
            "You may not create projects: ask the site's operators for the "
            "compute.add_project permission."
        )
    data = body.dict()
    project = projects.create_project(user, slug=data.pop("slug"), name=data.pop("name"), **data)
    return Status(201, project_out(request, with_apps(owned_projects(user)).get(id=project.id)))


@router.get("/{slug}", response={200: ProjectOut, **ERRORS}, url_name="project")
def get_project(request: HttpRequest, slug: str = PROJECT) -> dict[str, Any]:
    return project_out(request, _project_with_apps(request, slug))


def _changes(body: ProjectUpdate | AppUpdate) -> dict[str, Any]:
    # A field left out, or sent as null, stays as it is.
    return {k: v for k, v in body.dict(exclude_unset=True).items() if v is not None}


@router.patch(
    "/{slug}",
    response={200: ProjectOut, **ERRORS},
    url_name="update_project",
    summary="Change a project's settings (only the fields sent; new batches take them)",
)
def update_project(request: HttpRequest, body: ProjectUpdate, slug: str = PROJECT) -> Any:
    project = owned_project(_user(request), slug)
    projects.update_project(project, **_changes(body))
    return project_out(request, _project_with_apps(request, slug))


@router.get("/{slug}/apps", response={200: list[AppOut], **ERRORS}, url_name="apps")
def list_apps(request: HttpRequest, slug: str = PROJECT) -> list[dict[str, Any]]:
    return [app_out(app) for app in _project_with_apps(request, slug).apps.all()]


def _project_with_apps(request: HttpRequest, slug: str) -> Project:
    project = with_apps(owned_projects(_user(request))).filter(slug=slug).first()
    if project is None:
        raise Http404
    return project


@router.post(
    "/{slug}/apps",
    response={201: AppOut, **ERRORS},
    url_name="create_app",
    summary="Create an app (its Python code must already be on the server)",
)
def create_app(request: HttpRequest, body: AppIn, slug: str = PROJECT) -> Status:
    project = owned_project(_user(request), slug)
    data = body.dict()
    app = projects.create_app(project, **data)
    return Status(201, app_out(app))


@router.patch(
    "/{slug}/apps/{app}",
    response={200: AppOut, **ERRORS},
    url_name="update_app",
    summary="Change an app's settings (only the fields sent)",
)
def update_app(request: HttpRequest, body: AppUpdate, slug: str = PROJECT, app: str = APP) -> Any:
    target = owned_app(_user(request), slug, app)
    projects.update_app(target, **_changes(body))
    return app_out(target)


def _part(request: HttpRequest, name: str) -> bytes | None:
    """A multipart field as bytes, sent as a file (``curl -F kernel=@k.js``) or as a plain
    value (``curl -F kernel=<k.js``)."""
    limit = projects.max_kernel_bytes()
    upload = request.FILES.get(name)
    if upload is not None:
        if upload.size is not None and upload.size > limit:
            raise TooLarge(f"{name}: larger than {limit} bytes")
        return upload.read()
    value = request.POST.get(name)
    return value.encode() if value is not None else None


def _version_number(request: HttpRequest) -> int | None:
    text = (request.POST.get("version") or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 0 <= int(text) <= 2_000_000_000:
        raise ValidationError("version: must be a whole number, 0 or more")
    return int(text) or None


VERSION_FORM = {
    "type": "object",
    "required": ["kernel"],
    "properties": {
        "kernel": {
            "type": "string",
            "format": "binary",
            "description": "The ES module exporting run(input, progress, env).",
        },
        "wasm": {
            "type": "string",
            "format": "binary",
            "description": "Optional WebAssembly binary (env.wasm in the kernel).",
        },
        "version": {
            "type": "integer",
            "minimum": 0,
            "maximum": 2_000_000_000,
            "description": "0 or absent: one past the newest.",
        },
    },
}


@router.post(
    "/{slug}/apps/{app}/versions",
    response={201: VersionOut, 413: Error, **ERRORS},
    url_name="create_version",
    summary="Upload a kernel (an ES module) and optionally its WebAssembly binary",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": VERSION_FORM}},
        }
    },
)
def create_version(request: HttpRequest, slug: str = PROJECT, app: str = APP) -> Status:
    # The form is read here rather than declared to ninja: a part may come as a file or as
    # a plain field, and both are fine.
    target = owned_app(_user(request), slug, app)
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise ValidationError("send the kernel as multipart/form-data (curl -F kernel=@k.js)")
    kernel = _part(request, "kernel")
    if kernel is None:
        raise ValidationError("kernel: the field is missing")
    created = projects.add_app_version(
        target, kernel, _part(request, "wasm"), _version_number(request)
    )
    return Status(201, version_out(created))


def _default_name(app_name: str) -> str:
    return f"{app_name} {timezone.now():%Y-%m-%d %H:%M:%S}"


def _read_jsonl(request: HttpRequest) -> list[Any]:
    content_type = request.content_type or ""
    if content_type not in JSONL_TYPES:
        raise ValidationError(
            "send the inputs as JSON Lines with Content-Type: application/x-ndjson"
        )
    limit = int(settings.COMPUTE.get("API_MAX_BATCH_BYTES", DEFAULT_MAX_BATCH_BYTES))
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise TooLarge(f"the inputs are larger than {limit} bytes; split the batch")
    # Read the stream, not request.body: Django caps request.body at a few megabytes, far
    # below a large batch, and this endpoint has its own cap.
    data = request.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the inputs are larger than {limit} bytes; split the batch")
    try:
        return read_jsonl(data.splitlines())
    except RecursionError as e:
        raise ValidationError("an input is nested too deeply") from e


@router.post(
    "/{slug}/apps/{app}/batches",
    response={201: BatchOut, 413: Error, **ERRORS},
    url_name="submit_batch",
    summary="Submit a batch: one work unit per line of a JSON Lines body",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One JSON value a line: each is the input of one work unit.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def submit_batch(
    request: HttpRequest,
    slug: str = PROJECT,
    app: str = APP,
    name: str = Query(
        "", max_length=120, pattern=NO_NUL, description="Default: the app's name and the time."
    ),
    priority: int = Query(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="Higher goes first."),
) -> Status:
    target = owned_app(_user(request), slug, app)
    inputs = _read_jsonl(request)
    batch = projects.submit_batch(
        target,
        inputs,
        name=name or _default_name(target.name),
        priority=priority,
        submitter=_user(request),
    )
    return Status(201, batch_out(request, batch))


@router.post(
    "/{slug}/apps/{app}/sweeps",
    response={201: BatchOut, **ERRORS},
    url_name="submit_sweep",
    summary="Submit a batch from a parameter sweep: one work unit per value of a parameter",
)
def submit_sweep(
    request: HttpRequest, body: SweepIn, slug: str = PROJECT, app: str = APP
) -> Status:
    target = owned_app(_user(request), slug, app)
    if len(json.dumps(body.template)) > 64 * 1024:
        raise ValidationError("template: larger than 64 KiB")
    inputs = sweep_inputs(body.template, _sweep_parameters(body), body.mode)
    batch = projects.submit_batch(
        target,
        inputs,
        name=body.name or _default_name(target.name),
        priority=body.priority,
        submitter=_user(request),
    )
    return Status(201, batch_out(request, batch))


def _sweep_parameters(body: SweepIn) -> dict[str, Any]:
    one = body.parameter is not None or body.start is not None or body.stop is not None
    if one and body.parameters is not None:
        raise ValidationError("give either parameter, start and stop, or parameters: not both")
    if body.parameters is not None:
        return {
            name: spec if isinstance(spec, list) else spec.dict()
            for name, spec in body.parameters.items()
        }
    if body.parameter is None or body.start is None or body.stop is None:
        raise ValidationError("a sweep needs parameter, start and stop, or parameters")
    return {body.parameter: {"start": body.start, "stop": body.stop, "step": body.step}}


@router.get(
    "/{slug}/batches",
    response={200: list[BatchOut], **ERRORS},
    url_name="project_batches",
    summary="The project's batches, newest first",
)
def list_batches(
    request: HttpRequest,
    slug: str = PROJECT,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> list[dict[str, Any]]:
    project = owned_project(_user(request), slug)
    batches = Batch.objects.filter(project=project).select_related("project", "app")
    newest = batches.order_by("-created_at", "-id")[offset : offset + limit]
    return [batch_out(request, b) for b in newest]
