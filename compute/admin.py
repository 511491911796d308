"""The operator's console: every engine model, the actions BOINC's ops pages offer, and a
queue dashboard.

State fields (replica states, error masks, assimilation, batch counters, credit) are
read-only here: they move only through the domain functions, which the actions call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import slugify

from compute import dashboard
from compute.catalog import catalog
from compute.forms import AppVersionForm, BanUserForm, SubmitBatchForm
from compute.models import (
    App,
    AppVersion,
    AssimilatedOutput,
    Batch,
    CreditEntry,
    Host,
    HostApp,
    Membership,
    Project,
    Replica,
    Volunteer,
    WorkUnit,
)
from compute.states import BatchState, ErrorMask
from compute.submission import (
    cancel_batch,
    cancel_workunits,
    create_batch,
    iter_outputs,
    retry_workunits,
)

CREDIT_FIELDS = ("total_credit", "rac", "rac_time")
FORM_TEMPLATE = "admin/compute/form_page.html"


def _plural(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


class ViewOnlyAdmin(admin.ModelAdmin):
    """Rows that only the engine writes: listed and shown, never added, edited or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _form_page(
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


# --- Projects and apps ------------------------------------------------------------------------


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
        self.message_user(request, f"Deprecated {_plural(n, 'version')}.", messages.SUCCESS)
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
        self.message_user(request, f"Undeprecated {_plural(n, 'version')}.", messages.SUCCESS)


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


# --- Hosts and volunteers ---------------------------------------------------------------------


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
        self.message_user(request, f"Banned {_plural(n, 'host')}.", messages.SUCCESS)

    @admin.action(description="Unban", permissions=["change"])
    def unban(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        n = queryset.filter(banned=True).update(banned=False)
        self.message_user(request, f"Unbanned {_plural(n, 'host')}.", messages.SUCCESS)


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
        return _form_page(self, request, form, title="Ban a user", submit="Ban")

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
        self.message_user(request, f"Banned {_plural(n, 'volunteer')}.", messages.SUCCESS)

    @admin.action(description="Unban", permissions=["change"])
    def unban(self, request: HttpRequest, queryset: QuerySet[Volunteer]) -> None:
        n = queryset.filter(banned=True).update(banned=False)
        self.message_user(request, f"Unbanned {_plural(n, 'volunteer')}.", messages.SUCCESS)


# --- Work -------------------------------------------------------------------------------------


SUBMIT_FIELDSETS = [
    (None, {"fields": ["app", "name", "priority", "source"]}),
    ("Parameter range", {"fields": ["template", "parameter", ("start", "stop", "step")]}),
    ("JSON Lines file", {"fields": ["file"]}),
]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "project",
        "app",
        "state",
        "priority",
        "progress_percent",
        "n_workunits",
        "n_assimilated",
        "n_errored",
        "created_at",
        "completed_at",
    ]
    list_filter = ["state", "project"]
    search_fields = ["name", "project__slug", "app__name"]
    list_select_related = ["project", "app__project"]
    # Priority was copied into the work units at submission; the rest is the engine's.
    readonly_fields = [
        "project",
        "app",
        "submitter",
        "priority",
        "state",
        "n_workunits",
        "n_assimilated",
        "n_errored",
        "created_at",
        "completed_at",
        "workunits_link",
    ]
    actions = ["cancel", "create_workunits", "download_results"]

    def has_delete_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        # Cancel instead; finished work is purged by the cleanup sweep.
        return False

    @admin.display(description="progress")
    def progress_percent(self, obj: Batch) -> str:
        return f"{obj.progress:.0%}"

    @admin.display(description="work units")
    def workunits_link(self, obj: Batch) -> str:
        url = reverse("admin:compute_workunit_changelist") + "?" + urlencode({"batch": obj.pk})
        return format_html('<a href="{}">{} work units</a>', url, obj.n_workunits)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """Adding a batch means submitting work, so the add page is the submission form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = SubmitBatchForm(request.POST, request.FILES)
            if form.is_valid() and (batch := self._submit(request, form)):
                return redirect("admin:compute_batch_change", batch.pk)
        else:
            keys = ("app", "name", "priority")
            form = SubmitBatchForm(initial={k: request.GET[k] for k in keys if k in request.GET})
        return _form_page(
            self,
            request,
            form,
            title="Submit a batch",
            submit="Create work units",
            fieldsets=SUBMIT_FIELDSETS,
        )

    def _submit(self, request: HttpRequest, form: SubmitBatchForm) -> Batch | None:
        app = form.cleaned_data["app"]
        try:
            batch = create_batch(
                app.project,
                app,
                form.inputs,
                name=form.cleaned_data["name"],
                priority=form.cleaned_data["priority"],
                submitter=request.user,
            )
        except ValidationError as e:
            form.add_error(None, e)
            return None
        self.message_user(
            request,
            f"Created batch “{batch.name}” with {_plural(batch.n_workunits, 'work unit')}.",
            messages.SUCCESS,
        )
        return batch

    @admin.action(description="Cancel batch", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        running = list(queryset.filter(state=BatchState.IN_PROGRESS))
        if running:
            stopped = sum(cancel_batch(batch) for batch in running)
            self.message_user(
                request,
                f"Cancelled {_plural(len(running), 'batch', 'batches')} "
                f"({_plural(stopped, 'work unit')} stopped).",
                messages.SUCCESS,
            )
        if skipped := queryset.count() - len(running):
            self.message_user(
                request,
                f"{_plural(skipped, 'batch', 'batches')} had already finished.",
                messages.WARNING,
            )

    @admin.action(
        description="Create work units (a new batch for the same app)", permissions=["add"]
    )
    def create_workunits(
        self, request: HttpRequest, queryset: QuerySet[Batch]
    ) -> HttpResponseRedirect | None:
        apps = set(queryset.values_list("app_id", flat=True))
        if len(apps) != 1:
            self.message_user(request, "Choose batches of one app.", messages.ERROR)
            return None
        batch = queryset.order_by("-created_at").first()
        query = urlencode({"app": batch.app_id, "priority": batch.priority})
        return HttpResponseRedirect(reverse("admin:compute_batch_add") + "?" + query)

    @admin.action(description="Download results (JSON Lines)", permissions=["view"])
    def download_results(
        self, request: HttpRequest, queryset: QuerySet[Batch]
    ) -> StreamingHttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose one batch to download.", messages.ERROR)
            return None
        batch = queryset.get()
        lines: Iterator[str] = (json.dumps(row) + "\n" for row in iter_outputs(batch))
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        filename = f"{slugify(batch.name) or 'batch'}-{batch.pk}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


# A cancelled work unit carries the cancelled bit alone: only error-free ones are cancelled.
WORKUNIT_RESULTS = {
    "pending": Q(error_mask=0, canonical_replica__isnull=True),
    "valid": Q(canonical_replica__isnull=False),
    "failed": Q(error_mask__gt=0) & ~Q(error_mask=int(ErrorMask.CANCELLED)),
    "cancelled": Q(error_mask=int(ErrorMask.CANCELLED)),
}


class WorkUnitResultFilter(admin.SimpleListFilter):
    title = "result"
    parameter_name = "result"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [(name, name) for name in WORKUNIT_RESULTS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[WorkUnit]) -> QuerySet | None:
        condition = WORKUNIT_RESULTS.get(self.value() or "")
        return None if condition is None else queryset.filter(condition)


class ReplicaInline(admin.TabularInline):
    model = Replica
    fields = [
        "ordinal",
        "server_state",
        "outcome",
        "validate_state",
        "host",
        "sent_at",
        "received_at",
        "claimed_credit",
        "granted_credit",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Replica]:
        return super().get_queryset(request).select_related("host").defer("output")


@admin.register(WorkUnit)
class WorkUnitAdmin(ViewOnlyAdmin):
    list_display = [
        "name",
        "app",
        "batch",
        "result",
        "replication",
        "need_validate",
        "assimilate_state",
        "created_at",
        "validated_at",
    ]
    list_filter = [
        WorkUnitResultFilter,
        "need_validate",
        "assimilate_state",
        "replication",
        "project",
    ]
    search_fields = ["name"]
    list_select_related = ["app__project", "batch__project"]
    show_full_result_count = False
    inlines = [ReplicaInline]
    actions = ["retry", "cancel"]

    def has_change_permission(self, request: HttpRequest, obj: WorkUnit | None = None) -> bool:
        # Each work unit stays read-only; the actions, which ask without one, need "change".
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkUnit]:
        # Inputs may be large; the change page loads the one it shows.
        return super().get_queryset(request).defer("input")

    @admin.display(description="result")
    def result(self, obj: WorkUnit) -> str:
        if obj.error_mask == ErrorMask.CANCELLED:
            return "cancelled"
        if obj.error_mask:
            return f"failed: {obj.error_description}"
        return "valid" if obj.canonical_replica_id else "pending"

    @admin.action(description="Retry errored work units", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[WorkUnit]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        n = retry_workunits(ids)
        self.message_user(
            request, f"Retried {_plural(n, 'work unit')}.", messages.SUCCESS if n else messages.INFO
        )
        if len(ids) > n:
            self.message_user(
                request,
                f"{_plural(len(ids) - n, 'work unit')} left alone: only failed work units and "
                "failed assimilations are retried (cancelled ones are not).",
                messages.WARNING,
            )

    @admin.action(description="Cancel work units", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[WorkUnit]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        n = cancel_workunits(ids)
        self.message_user(
            request,
            f"Cancelled {_plural(n, 'work unit')}.",
            messages.SUCCESS if n else messages.INFO,
        )
        if len(ids) > n:
            self.message_user(
                request,
                f"{_plural(len(ids) - n, 'work unit')} left alone: already valid, failed or "
                "cancelled.",
                messages.WARNING,
            )


@admin.register(Replica)
class ReplicaAdmin(ViewOnlyAdmin):
    list_display = [
        "__str__",
        "workunit",
        "host",
        "server_state",
        "outcome",
        "validate_state",
        "sent_at",
        "deadline",
        "received_at",
        "claimed_credit",
        "granted_credit",
    ]
    list_filter = ["server_state", "outcome", "validate_state", "project"]
    search_fields = ["workunit__name", "=host__uuid", "host__name"]
    list_select_related = ["workunit", "host"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Replica]:
        return super().get_queryset(request).defer("output", "workunit__input")


@admin.register(AssimilatedOutput)
class AssimilatedOutputAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "batch", "workunit_id", "created_at"]
    list_filter = ["project"]
    search_fields = ["name", "=workunit_id"]
    list_select_related = ["project", "batch__project"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AssimilatedOutput]:
        return super().get_queryset(request).defer("input", "output")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CreditEntry)
class CreditEntryAdmin(ViewOnlyAdmin):
    """The ledger is append-only: the validator writes it, nobody edits or removes a row."""

    list_display = [
        "replica_id",
        "workunit_id",
        "project",
        "host",
        "user",
        "amount",
        "granted_at",
        "folded",
    ]
    list_filter = ["folded", "project"]
    search_fields = ["=replica_id", "=workunit_id", "user__username"]
    list_select_related = ["project", "host", "user"]
    show_full_result_count = False
