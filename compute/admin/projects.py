"""The admin of projects, apps, app versions and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from compute import dashboard
from compute.admin.common import CREDIT_FIELDS, plural
from compute.catalog import catalog
from compute.forms import AppVersionForm
from compute.models import (
    App,
    AppVersion,
    Membership,
    Project,
)

PROJECT_REPLICATION = [
    ("min_quorum", "target_nresults"),
    ("max_error_results", "max_total_results", "max_success_results"),
    ("delay_bound", "max_deadline_extension"),
]
PROJECT_CREDIT = [
    "credit_policy",
    ("max_credit_per_replica", "daily_quota_per_core"),
    CREDIT_FIELDS,
]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "owner",
        "is_active",
        "is_public",
        "min_quorum",
        "target_nresults",
        "total_credit",
        "rac",
        "created_at",
    ]
    list_filter = ["is_active", "is_public", "credit_policy"]
    search_fields = ["name", "slug", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = [*CREDIT_FIELDS, "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "owner", "description", "is_public", "is_active"]}),
        ("Replication", {"fields": PROJECT_REPLICATION}),
        ("Credit", {"fields": PROJECT_CREDIT}),
        (None, {"fields": ["created_at"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> list[str]:
        # Work unit names carry the slug, so it is fixed once the project exists.
        return [*self.readonly_fields, "slug"] if obj else list(self.readonly_fields)

    def get_prepopulated_fields(self, request: HttpRequest, obj: Project | None = None) -> dict:
        return {} if obj else {"slug": ("name",)}

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.dashboard_view)
        return [path("dashboard/", view, name="compute_project_dashboard"), *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Queue dashboard",
            "opts": self.opts,
            "status": dashboard.grid_status(),
        }
        return TemplateResponse(request, "admin/compute/project/dashboard.html", context)


class AppVersionInline(admin.TabularInline):
    model = AppVersion
    fields = ["version", "kernel_sha256", "wasm_sha256", "deprecated", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AppVersion]:
        return super().get_queryset(request).defer("kernel", "wasm")


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "title",
        "project",
        "comparator",
        "adaptive_replication",
        "homogeneous_redundancy",
        "submit_link",
    ]
    list_filter = ["project", "comparator", "adaptive_replication", "homogeneous_redundancy"]
    search_fields = ["name", "title", "project__slug", "project__name"]
    list_select_related = ["project"]
    autocomplete_fields = ["project"]
    inlines = [AppVersionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: App | None = None) -> list[str]:
        # Work units and replicas copy the app's project; moving the app would split them.
        return ["project"] if obj else []

    @admin.display(description="")
    def submit_link(self, obj: App) -> str:
        url = reverse("admin:compute_batch_add") + "?" + urlencode({"app": obj.pk})
        return format_html('<a href="{}">Submit batch</a>', url)


@admin.register(AppVersion)
class AppVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "version", "deprecated", "short_sha256", "has_wasm", "created_at"]
    list_filter = ["deprecated", "app__project"]
    search_fields = ["app__name", "app__project__slug", "kernel_sha256"]
    list_select_related = ["app__project"]
    autocomplete_fields = ["app"]
    actions = ["deprecate", "undeprecate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AppVersion]:
        return super().get_queryset(request).defer("wasm")

    def get_form(
        self, request: HttpRequest, obj: AppVersion | None = None, **kwargs: Any
    ) -> type[ModelForm]:
        if obj is None:
            kwargs["form"] = AppVersionForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: AppVersion | None = None) -> list:
        # A released version is immutable: volunteers cache kernels by hash. Ship a new one.
        fixed = ["kernel_sha256", "wasm_sha256", "created_at"]
        return ["app", "version", "kernel", *fixed] if obj else fixed

    @admin.display(description="kernel sha256")
    def short_sha256(self, obj: AppVersion) -> str:
        return obj.kernel_sha256[:12]

    @admin.display(description="wasm", boolean=True)
    def has_wasm(self, obj: AppVersion) -> bool:
        return bool(obj.wasm_sha256)

    def _set_deprecated(self, queryset: QuerySet[AppVersion], value: bool) -> int:
        n = queryset.exclude(deprecated=value).update(deprecated=value)
        catalog.invalidate()  # update() sends no post_save
        return n

    @admin.action(
        description="Deprecate (send no new work with these versions)", permissions=["change"]
    )
    def deprecate(self, request: HttpRequest, queryset: QuerySet[AppVersion]) -> None:
        app_ids = set(queryset.values_list("app_id", flat=True))
        n = self._set_deprecated(queryset, True)
        self.message_user(request, f"Deprecated {plural(n, 'version')}.", messages.SUCCESS)
        for app in App.objects.filter(id__in=app_ids).select_related("project"):
            if app.current_version() is None:
                self.message_user(
                    request,
                    f"{app} has no current version left: it gets no new work until one is added.",
                    messages.WARNING,
                )

    @admin.action(description="Undeprecate", permissions=["change"])
    def undeprecate(self, request: HttpRequest, queryset: QuerySet[AppVersion]) -> None:
        n = self._set_deprecated(queryset, False)
        self.message_user(request, f"Undeprecated {plural(n, 'version')}.", messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "project",
        "state",
        "no_more_work",
        "resource_share",
        "total_credit",
        "rac",
        "joined_at",
    ]
    list_filter = ["state", "no_more_work", "project"]
    search_fields = ["user__username", "user__email", "project__slug"]
    list_select_related = ["user", "project"]
    raw_id_fields = ["user"]
    autocomplete_fields = ["project"]
    readonly_fields = ["state", *CREDIT_FIELDS, "joined_at"]
