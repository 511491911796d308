from __future__ import annotations

from collections.abc import Collection

from django.db import models
from django.utils.text import slugify


def unique_slug(
    model: type[models.Model], text: str, *, fallback: str, reserved: Collection[str] = ()
) -> str:
    """A slug for ``text`` that no row of ``model`` has and no URL of ours shadows.

    Names in scripts slugify drops entirely (e.g. "日本") get ``fallback``; a clash gets a
    number. The unique index has the last word if two creations race.
    """
    max_length = model._meta.get_field("slug").max_length - 6
    base = slugify(text)[:max_length].strip("-") or fallback
    candidate, n = base, 2
    while candidate in reserved or model._default_manager.filter(slug=candidate).exists():
        candidate = f"{base}-{n}"
        n += 1
    return candidate
