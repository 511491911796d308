"""Exceptions the API turns into responses (see compute.api.api)."""

from __future__ import annotations


class Forbidden(Exception):
    """403: the user may not do this at all (as opposed to 404: not theirs)."""


class TooLarge(Exception):
    """413: the request body or an upload is over its limit."""
