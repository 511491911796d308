"""Models as the API shows them (the shapes of compute.api.schemas)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from compute.api.projects import PROJECT_FIELDS
from compute.models import App, AppVersion, Batch, Project


def with_apps(projects: QuerySet[Project]) -> QuerySet[Project]:
    """Projects with their apps and non-deprecated versions in three queries; the kernels
    themselves are not loaded."""
    versions = AppVersion.objects.filter(deprecated=False).defer("kernel", "wasm")
    return projects.prefetch_related(
        Prefetch(
            "apps",
            queryset=App.objects.order_by("name").prefetch_related(
                Prefetch("versions", queryset=versions.order_by("-version"), to_attr="live")
            ),
        )
    )


def version_out(version: AppVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version": version.version,
        "kernel_sha256": version.kernel_sha256,
        "wasm_sha256": version.wasm_sha256,
        "deprecated": version.deprecated,
        "created_at": version.created_at,
    }


def app_out(app: App) -> dict[str, Any]:
    live = getattr(app, "live", None)
    current = live[0] if live else (None if live is not None else app.current_version())
    return {
        "name": app.name,
        "title": app.title,
        "description": app.description,
        "comparator": app.comparator,
        "tolerance": app.tolerance,
        "comparator_path": app.comparator_path,
        "reference_path": app.reference_path,
        "assimilator_path": app.assimilator_path,
        "adaptive_replication": app.adaptive_replication,
        "spot_check_rate": app.spot_check_rate,
        "homogeneous_redundancy": app.homogeneous_redundancy,
        "min_memory_mb": app.min_memory_mb,
        "min_cores": app.min_cores,
        "needs_wasm": app.needs_wasm,
        "current_version": version_out(current),
    }


# What an owner set when creating the project, besides its text and visibility.
PROJECT_SETTINGS = tuple(f for f in PROJECT_FIELDS if f not in ("description", "is_public"))


def project_out(request: HttpRequest, project: Project) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "is_public": project.is_public,
        "is_active": project.is_active,
        "created_at": project.created_at,
        # What the owner set: every field a project is created with reads back.
        **{field: getattr(project, field) for field in PROJECT_SETTINGS},
        "url": request.build_absolute_uri(project.get_absolute_url()),
        "dashboard_url": request.build_absolute_uri(reverse("owners:project", args=[project.slug])),
        "apps": [app_out(app) for app in project.apps.all()],
    }


def batch_out(request: HttpRequest, batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "project": batch.project.slug,
        "app": batch.app.name,
        "name": batch.name,
        "state": batch.state,
        "priority": batch.priority,
        "n_workunits": batch.n_workunits,
        "n_assimilated": batch.n_assimilated,
        "n_errored": batch.n_errored,
        "progress": round(batch.progress, 6),
        "created_at": batch.created_at,
        "completed_at": batch.completed_at,
        "results_url": request.build_absolute_uri(reverse("api:batch_results", args=[batch.id])),
    }
