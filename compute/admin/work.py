"""The admin of batches, work units, replicas, assimilated outputs and the credit ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import slugify

from compute.admin.common import ViewOnlyAdmin, form_page, plural
from compute.forms import SubmitBatchForm
from compute.models import (
    AssimilatedOutput,
    Batch,
    CreditEntry,
    Replica,
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
        return form_page(
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
            f"Created batch “{batch.name}” with {plural(batch.n_workunits, 'work unit')}.",
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
                f"Cancelled {plural(len(running), 'batch', 'batches')} "
                f"({plural(stopped, 'work unit')} stopped).",
                messages.SUCCESS,
            )
        if skipped := queryset.count() - len(running):
            self.message_user(
                request,
                f"{plural(skipped, 'batch', 'batches')} had already finished.",
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
            request, f"Retried {plural(n, 'work unit')}.", messages.SUCCESS if n else messages.INFO
        )
        if len(ids) > n:
            self.message_user(
                request,
                f"{plural(len(ids) - n, 'work unit')} left alone: only failed work units and "
                "failed assimilations are retried (cancelled ones are not).",
                messages.WARNING,
            )

    @admin.action(description="Cancel work units", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[WorkUnit]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        n = cancel_workunits(ids)
        self.message_user(
            request,
            f"Cancelled {plural(n, 'work unit')}.",
            messages.SUCCESS if n else messages.INFO,
        )
        if len(ids) > n:
            self.message_user(
                request,
                f"{plural(len(ids) - n, 'work unit')} left alone: already valid, failed or "
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
