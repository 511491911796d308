"""Install the example apps as projects, for the demo and for tests that need real apps."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from compute import submission
from compute.examples import EXAMPLES, ExampleApp
from compute.models import App, AppVersion, Batch, Project
from compute.models.project import sha256_hex
from compute.states import BatchState

DEMO_PROJECTS = {
    "mandelbrot": ("Mandelbrot@Home", "mandelbrot"),
    "abc-at-home": ("ABC@Home", "abc-triples"),
    "keysearch": ("Key search", "keysearch"),
}


@dataclass(frozen=True)
class Installed:
    project: Project
    app: App
    version: AppVersion
    batch: Batch | None


def install_example(
    slug: str, name: str, example: ExampleApp, owner, *, batch: bool = True
) -> Installed:
    """Create (or update) a project running one example app; its kernel becomes a new app
    version whenever the source changed. Submits the next batch of the example's demo series
    unless one is in progress."""
    with transaction.atomic():
        project, _ = Project.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "owner": owner, "description": example.description},
        )
        app, _ = App.objects.update_or_create(
            project=project,
            name=example.name,
            defaults={
                "title": example.title,
                "description": example.description,
                "reference_path": example.reference_path,
                "assimilator_path": example.assimilator_path,
                "comparator": example.comparator,
            },
        )
        version = _current_version(app, example)
        running = None
        if batch:
            running = app.batches.filter(state=BatchState.IN_PROGRESS).first()
            if running is None:
                running = submit_next_batch(app, example)
    return Installed(project, app, version, running)


def submit_next_batch(app: App, example: ExampleApp) -> Batch:
    """The next batch of ``example``'s demo series, continuing from the newest batch of
    ``app`` (its last work unit's input), submitted as the project's owner would submit it."""
    inputs = example.next_demo_inputs(_last_input(app))
    return submission.create_batch(
        app.project,
        app,
        inputs,
        name=f"{example.title}: {example.demo_batch_name(inputs)}",
        submitter=app.project.owner,
    )


def _last_input(app: App) -> dict | None:
    """The input where the newest batch stopped; None without one (the series starts over)."""
    newest = app.batches.order_by("-id").first()
    if newest is None:
        return None
    # The purge may have taken the work units of a batch long finished; its outputs keep
    # their inputs.
    last = newest.workunits.order_by("-id").values_list("input", flat=True).first()
    if last is None:
        last = newest.outputs.order_by("-workunit_id").values_list("input", flat=True).first()
    return last


def _current_version(app: App, example: ExampleApp) -> AppVersion:
    kernel, wasm = example.kernel_source(), example.wasm_bytes()
    latest = app.versions.order_by("-version").first()
    same = (
        latest is not None
        and latest.kernel_sha256 == sha256_hex(kernel.encode())
        and latest.wasm_sha256 == (sha256_hex(wasm) if wasm else "")
    )
    if same:
        return latest
    return AppVersion.objects.create(
        app=app, version=(latest.version + 1) if latest else 1, kernel=kernel, wasm=wasm
    )


def install_demo(owner=None) -> list[Installed]:
    owner = owner or get_user_model().objects.filter(is_superuser=True).order_by("id").first()
    return [
        install_example(slug, name, EXAMPLES[example], owner)
        for slug, (name, example) in DEMO_PROJECTS.items()
    ]
