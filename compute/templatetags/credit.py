"""``{{ value|credit }}``: a builtin filter (settings.TEMPLATES), so every template formats
credit by compute.credit_display's one rule."""

from __future__ import annotations

from django import template

from compute.credit_display import format_credit

register = template.Library()
register.filter("credit", format_credit)
