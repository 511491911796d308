"""Finding what a user owns. Anything else is "not found": a project owner can neither touch
nor learn about another owner's projects, apps or batches."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from compute.models import App, Batch, Project


def owned_projects(user) -> QuerySet[Project]:
    return Project.objects.filter(owner=user)


def owned_project(user, slug: str) -> Project:
    return get_object_or_404(owned_projects(user), slug=slug)


def owned_app(user, slug: str, name: str) -> App:
    return get_object_or_404(
        App.objects.select_related("project"), project__owner=user, project__slug=slug, name=name
    )


def owned_batch(user, batch_id: int) -> Batch:
    return get_object_or_404(
        Batch.objects.select_related("project", "app"), id=batch_id, project__owner=user
    )
