"""What a project owner does to their projects: create projects and apps, add kernel
versions, submit batches. Plain functions over the engine's models; they raise
ValidationError with a message for the owner and change nothing when they do.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from compute import jsonvalues
from compute.api.code_paths import check_code_path
from compute.feeder import MAX_PRIORITY
from compute.forms import WASM_MAGIC
from compute.models import App, AppVersion, Batch, Comparator, Project
from compute.submission import create_batch

# A kernel must export run(): a cheap check that catches uploading the wrong file.
_EXPORTS_RUN = re.compile(
    r"export\s+(async\s+)?function\s*\*?\s*run\s*\(|export\s+(const|let|var)\s+run\s*=|"
    r"export\s*\{[^}]*\brun\b[^}]*\}"
)
PROJECT_FIELDS = (
    "description",
    "is_public",
    "min_quorum",
    "target_nresults",
    "max_error_results",
    "max_total_results",
    "max_success_results",
    "delay_bound",
    "max_deadline_extension",
    "daily_quota_per_core",
)
APP_FIELDS = (
    "description",
    "tolerance",
    "adaptive_replication",
    "spot_check_rate",
    "homogeneous_redundancy",
    "min_memory_mb",
    "min_cores",
    "needs_wasm",
)
# What an update may change besides these: the name (a project's slug, an app's name, its
# code paths and comparator are fixed once created).
PROJECT_UPDATE_FIELDS = ("name", *PROJECT_FIELDS)
APP_UPDATE_FIELDS = ("title", *APP_FIELDS)


class Conflict(Exception):
    """The name is taken (a project slug, an app name, a version number)."""


def may_create_projects(user) -> bool:
    """Staff, and users given the ``compute.add_project`` permission (directly or through a
    group), may create projects. Everyone may manage the projects they own."""
    return user.is_active and (user.is_staff or user.has_perm("compute.add_project"))


def _message(error: ValidationError) -> ValidationError:
    # Model validation reports per field; keep the field names in the message.
    if hasattr(error, "error_dict"):
        parts = [
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in error.message_dict.items()
        ]
        return ValidationError("; ".join(parts))
    return error


def _check_text(fields: dict[str, Any]) -> None:
    # Say so rather than fail in the database.
    for name, value in sorted(fields.items()):
        found = jsonvalues.problem(value)
        if found:
            raise ValidationError(f"{name}: {found}")


def create_project(owner, *, slug: str, name: str, **fields: Any) -> Project:
    unknown = set(fields) - set(PROJECT_FIELDS)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    _check_text({"slug": slug, "name": name, **fields})
    project = Project(owner=owner, slug=slug, name=name, **fields)
    try:
        project.full_clean(validate_unique=False)
    except ValidationError as e:
        raise _message(e) from e
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError as e:
        raise Conflict(f"a project with the slug {slug!r} already exists") from e
    return project


def update_project(project: Project, **fields: Any) -> Project:
    """Change the given settings of a project, all or none: the model's validators and its
    clean() decide, as in the admin."""
    _update(project, PROJECT_UPDATE_FIELDS, fields)
    return project


def update_app(app: App, **fields: Any) -> App:
    _update(app, APP_UPDATE_FIELDS, fields)
    return app


def _update(instance: Project | App, allowed: tuple[str, ...], fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    _check_text(fields)
    if not fields:
        return
    before = {name: getattr(instance, name) for name in fields}
    for name, value in fields.items():
        setattr(instance, name, value)
    try:
        instance.full_clean(validate_unique=False)
    except ValidationError as e:
        for name, value in before.items():
            setattr(instance, name, value)
        raise _message(e) from e
    instance.save(update_fields=list(fields))


def create_app(
    project: Project,
    *,
    name: str,
    title: str,
    reference_path: str,
    assimilator_path: str = "compute.assimilation.store_output",
    comparator: str = Comparator.EXACT,
    comparator_path: str = "",
    **fields: Any,
) -> App:
    unknown = set(fields) - set(APP_FIELDS)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    _check_text(
        {
            "name": name,
            "title": title,
            "reference_path": reference_path,
            "assimilator_path": assimilator_path,
            "comparator_path": comparator_path,
            **fields,
        }
    )
    errors = []
    # Checked before the model's own clean(), which imports the paths.
    for label, path in (
        ("reference_path", reference_path),
        ("assimilator_path", assimilator_path),
        ("comparator_path", comparator_path),
    ):
        if path:
            try:
                check_code_path(path)
            except ValidationError as e:
                errors.append(f"{label}: {' '.join(e.messages)}")
    if comparator != Comparator.CUSTOM and comparator_path:
        errors.append("comparator_path: only a custom comparator takes a path")
    if errors:
        raise ValidationError("; ".join(errors))
    app = App(
        project=project,
        name=name,
        title=title,
        reference_path=reference_path,
        assimilator_path=assimilator_path,
        comparator=comparator,
        comparator_path=comparator_path,
        **fields,
    )
    try:
        app.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as e:
        raise _message(e) from e
    try:
        with transaction.atomic():
            app.save()
    except IntegrityError as e:
        raise Conflict(f"the project already has an app named {name!r}") from e
    return app


def max_kernel_bytes() -> int:
    return settings.COMPUTE["MAX_KERNEL_BYTES"]


def check_kernel(kernel: bytes) -> str:
    limit = max_kernel_bytes()
    if not kernel.strip():
        raise ValidationError("kernel: the file is empty")
    if len(kernel) > limit:
        raise ValidationError(f"kernel: larger than {limit} bytes")
    try:
        text = kernel.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError("kernel: not UTF-8 text (it must be a JavaScript module)") from e
    if "\0" in text:
        raise ValidationError("kernel: contains NUL characters (it must be a JavaScript module)")
    if not _EXPORTS_RUN.search(text):
        raise ValidationError(
            "kernel: the module does not export run "
            "(write `export async function run(input, progress, env)`)"
        )
    return text


def check_wasm(wasm: bytes) -> bytes:
    limit = max_kernel_bytes()
    if len(wasm) > limit:
        raise ValidationError(f"wasm: larger than {limit} bytes")
    if not wasm.startswith(WASM_MAGIC):
        raise ValidationError("wasm: not a WebAssembly binary (it must start with \\0asm)")
    return wasm


def add_app_version(
    app: App, kernel: bytes, wasm: bytes | None = None, version: int | None = None
) -> AppVersion:
    """A new kernel release; by default numbered one past the newest. The newest version that
    is not deprecated is the one volunteers get."""
    text = check_kernel(kernel)
    if wasm is not None:
        check_wasm(wasm)
    if version is not None and not 1 <= version <= 2_000_000_000:
        raise ValidationError("version: must be a positive whole number")
    try:
        with transaction.atomic():
            # Lock the app so that two uploads cannot both take the next number.
            list(App.objects.select_for_update().filter(id=app.id).values_list("id"))
            if version is None:
                newest = app.versions.aggregate(n=Max("version"))["n"] or 0
                version = newest + 1
            return AppVersion.objects.create(app=app, version=version, kernel=text, wasm=wasm)
    except IntegrityError as e:
        raise Conflict(f"the app already has a version {version}") from e


def check_priority(priority: int) -> None:
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValidationError(f"priority: must be between {-MAX_PRIORITY} and {MAX_PRIORITY}")


def submit_batch(
    app: App, inputs: list[Any], *, name: str, priority: int = 0, submitter=None
) -> Batch:
    """A batch of work units for ``app``, which must have a kernel to send volunteers."""
    check_priority(priority)
    if not app.versions.filter(deprecated=False).exists():
        raise ValidationError(
            f"the app {app.name!r} has no kernel yet: upload a version before submitting work"
        )
    _check_text({"name": name})
    name = " ".join(name.split())[:120]
    if not name:
        raise ValidationError("name: must not be blank")
    return create_batch(app.project, app, inputs, name=name, priority=priority, submitter=submitter)
