"""The admin of hosts, their per-app records, and volunteers (bans)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path

from compute.admin.common import CREDIT_FIELDS, ViewOnlyAdmin, form_page, plural
from compute.forms import BanUserForm
from compute.models import (
    Host,
    HostApp,
    Volunteer,
)


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "user",
        "platform_class",
        "cores",
        "has_wasm",
        "banned",
        "n_valid",
        "n_invalid",
        "n_error",
        "total_credit",
        "rac",
        "last_seen",
    ]
    list_filter = ["banned", "platform_class", "has_wasm", "has_simd", "has_threads"]
    search_fields = ["=uuid", "name", "user__username", "user_agent"]
    list_select_related = ["user"]
    # What the client reports and what the engine counts; only the name and the ban are
    # the operator's.
    readonly_fields = [
        "uuid",
        "user",
        "platform_class",
        "user_agent",
        "cores",
        "memory_mb",
        "has_wasm",
        "has_simd",
        "has_threads",
        "benchmark_fpops",
        "n_valid",
        "n_invalid",
        "n_error",
        *CREDIT_FIELDS,
        "created_at",
        "last_seen",
    ]
    actions = ["ban", "unban"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Ban (send no more work)", permissions=["change"])
    def ban(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        n = queryset.filter(banned=False).update(banned=True)
        self.message_user(request, f"Banned {plural(n, 'host')}.", messages.SUCCESS)

    @admin.action(description="Unban", permissions=["change"])
    def unban(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        n = queryset.filter(banned=True).update(banned=False)
        self.message_user(request, f"Unbanned {plural(n, 'host')}.", messages.SUCCESS)


@admin.register(HostApp)
class HostAppAdmin(ViewOnlyAdmin):
    list_display = ["host", "app", "consecutive_valid", "daily_quota", "jobs_today", "quota_day"]
    list_filter = ["app"]
    search_fields = ["=host__uuid", "host__name"]
    list_select_related = ["host", "app__project"]


@admin.register(Volunteer)
class VolunteerAdmin(admin.ModelAdmin):
    list_display = ["user", "banned", "total_credit", "rac"]
    list_filter = ["banned"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", *CREDIT_FIELDS]
    actions = ["ban", "unban"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Rows appear with a user's first credit; "Ban a user" creates one when needed.
        return False

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.ban_user_view)
        return [path("ban-user/", view, name="compute_volunteer_ban_user"), *super().get_urls()]

    def ban_user_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = BanUserForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            user = form.cleaned_data["user"]
            volunteer, created = Volunteer.objects.get_or_create(
                user=user, defaults={"banned": True}
            )
            if volunteer.banned and not created:
                self.message_user(request, f"{user} was already banned.", messages.INFO)
            else:
                Volunteer.objects.filter(pk=volunteer.pk).update(banned=True)
                self.message_user(request, f"Banned {user}.", messages.SUCCESS)
            return redirect("admin:compute_volunteer_changelist")
        return form_page(self, request, form, title="Ban a user", submit="Ban")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        extra_context = {
            "can_ban_users": self.has_change_permission(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description="Ban (their hosts get no more work)", permissions=["change"])
    def ban(self, request: HttpRequest, queryset: QuerySet[Volunteer]) -> None:
        n = queryset.filter(banned=False).update(banned=True)
        self.message_user(request, f"Banned {plural(n, 'volunteer')}.", messages.SUCCESS)

    @admin.action(description="Unban", permissions=["change"])
    def unban(self, request: HttpRequest, queryset: QuerySet[Volunteer]) -> None:
        n = queryset.filter(banned=True).update(banned=False)
        self.message_user(request, f"Unbanned {plural(n, 'volunteer')}.", messages.SUCCESS)
