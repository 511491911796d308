"""The Mandelbrot picture of a project page: the newest batch of its Mandelbrot app (not
cancelled), drawn from the tiles assimilated so far.

The newest, not the project's "current" batch (in progress before completed): a batch
submitted after another shows the newer image, such as the demo's next zoom level, even once
it has completed while a straggler of the older one is still out.

Drawing reads every assimilated tile, so the PNG is kept in Django's cache under the batch id
and its assimilated count: a page refresh costs one query until another tile comes back, and
a new tile makes a new key (the old one expires on its own).
"""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import QuerySet

from compute.examples.mandelbrot import render_png
from compute.models import Batch, Project
from compute.states import BatchState

# Only outputs stored by this handler can be drawn by render_png.
MANDELBROT_ASSIMILATOR = "compute.examples.mandelbrot.assimilate"
CACHE_SECONDS = 3600


def _picture_batches() -> QuerySet[Batch]:
    return (
        Batch.objects.filter(app__assimilator_path=MANDELBROT_ASSIMILATOR)
        .exclude(state=BatchState.CANCELLED)
        .order_by("-created_at", "-id")
    )


def picture_batch(project: Project) -> Batch | None:
    """The batch whose picture the project page shows, or None for a project without one."""
    return _picture_batches().filter(project=project).first()


def cache_key(batch_id: int, n_assimilated: int) -> str:
    return f"compute:mandelbrot-png:{batch_id}:{n_assimilated}"


def project_picture(slug: str) -> bytes | None:
    """The PNG of a public project's picture, or None when there is none to show."""
    row = (
        _picture_batches()
        .filter(project__slug=slug, project__is_public=True)
        .values("id", "n_assimilated")
        .first()
    )
    if row is None:
        return None
    key = cache_key(row["id"], row["n_assimilated"])
    png = cache.get(key)
    if png is None:
        png = render_png(Batch.objects.get(id=row["id"]))
        cache.set(key, png, CACHE_SECONDS)
    return png
