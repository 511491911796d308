"""The API's fields for the models' settings, with the bounds the models' validators set.

A setting's bounds are written once, as validators on the model field; the admin's forms
and ``full_clean()`` use them directly, and the API's schema takes them from here, so the
API and the admin refuse and accept the same values."""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ninja import Field


def limits(model: type[models.Model], name: str) -> tuple[Any, Any]:
    """The tightest lower and upper bound among a model field's validators (the database
    column's own range included), None where there is none."""
    low = high = None
    for validator in model._meta.get_field(name).validators:
        if isinstance(validator, MinValueValidator):
            low = validator.limit_value if low is None else max(low, validator.limit_value)
        elif isinstance(validator, MaxValueValidator):
            high = validator.limit_value if high is None else min(high, validator.limit_value)
    return low, high


def setting(
    model: type[models.Model], name: str, kind: Any, *, partial: bool = False
) -> tuple[Any, Any]:
    """The type and the schema field of ``model.name``, for ``pydantic.create_model``: its
    bounds, its default (None in a partial update, where a field left out stays as it is)
    and its help text."""
    field = model._meta.get_field(name)
    low, high = limits(model, name)
    # The bounds go next to the base type, ahead of any validator the kind carries, so that
    # the JSON Schema states them as minimum and maximum.
    base, extra = kind, ()
    if get_origin(kind) is Annotated:
        base, extra = get_args(kind)[0], kind.__metadata__
    bounded = Annotated[base, Field(ge=low, le=high), *extra]
    description = str(field.help_text or field.verbose_name)
    if partial:
        return bounded | None, Field(None, description=description)
    return bounded, Field(field.default, description=description)
