"""Pieces shared by the admin modules."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse

CREDIT_FIELDS = ("total_credit", "rac", "rac_time")
FORM_TEMPLATE = "admin/compute/form_page.html"


def plural(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


class ViewOnlyAdmin(admin.ModelAdmin):
    """Rows that only the engine writes: listed and shown, never added, edited or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def form_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    form: Any,
    *,
    title: str,
    submit: str,
    fieldsets: list | None = None,
) -> TemplateResponse:
    fieldsets = fieldsets or [(None, {"fields": list(form.fields)})]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.opts,
        "form": form,
        "adminform": helpers.AdminForm(form, fieldsets, {}),
        "media": model_admin.media + form.media,
        "submit_label": submit,
    }
    return TemplateResponse(request, FORM_TEMPLATE, context)
