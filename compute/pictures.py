"""The Mandelbrot picture of a project page: the newest batch of its Mandelbrot app (not
cancelled) with tiles back, drawn from the tiles assimilated so far; before any, the batch in
progress that volunteers get first (the oldest).

The newest with tiles, not the project's "current" batch (in progress before completed): a
batch submitted after another shows the newer image, such as the demo's next zoom level,
even once it has completed while a straggler of the older one is still out; and batches
queued behind the one being computed do not show as empty grids meanwhile.

Drawing reads every assimilated tile, so the PNG is kept in Django's cache under the batch id
and its assimilated count: a page refresh costs one query until another tile comes back, and
a new tile makes a new key (the old one expires on its own).
"""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import Case, F, Q, QuerySet, Value, When

from compute.examples.mandelbrot import render_png
from compute.models import Batch, Project
from compute.states import BatchState

# Only outputs stored by this handler can be drawn by render_png.
MANDELBROT_ASSIMILATOR = "compute.examples.mandelbrot.assimilate"
CACHE_SECONDS = 3600


def _picture_batches() -> QuerySet[Batch]:
    return Batch.objects.filter(app__assimilator_path=MANDELBROT_ASSIMILATOR).exclude(
        state=BatchState.CANCELLED
    )


def _chosen(batches: QuerySet[Batch]) -> Batch | None:
    """One query: batches with tiles back, newest first; then those in progress, oldest
    first (the order volunteers get them); then the rest, newest first."""
    started, waiting = Q(n_assimilated__gt=0), Q(state=BatchState.IN_PROGRESS)
    group = Case(When(started, then=Value(0)), When(waiting, then=Value(1)), default=Value(2))
    within = Case(When(~started & waiting, then=F("id")), default=-F("id"))
    return batches.order_by(group, within).first()


def picture_batch(project: Project) -> Batch | None:
    """The batch whose picture the project page shows, or None for a project without one."""
    return _chosen(_picture_batches().filter(project=project))


def cache_key(batch_id: int, n_assimilated: int) -> str:
    return f"compute:mandelbrot-png:{batch_id}:{n_assimilated}"


def project_picture(slug: str) -> bytes | None:
    """The PNG of a public project's picture, or None when there is none to show."""
    batch = _chosen(_picture_batches().filter(project__slug=slug, project__is_public=True))
    if batch is None:
        return None
    key = cache_key(batch.id, batch.n_assimilated)
    png = cache.get(key)
    if png is None:
        png = render_png(batch)
        cache.set(key, png, CACHE_SECONDS)
    return png
