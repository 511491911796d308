from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from compute.models.credit_totals import CreditTotals
from compute.states import MembershipState


def between(low: float, high: float) -> list:
    """The bounds of a setting. The model's validators are the one place they are written:
    the admin's forms, the API's schema (``compute.api.bounds``) and anything calling
    ``full_clean()`` take them from here."""
    return [_a_number, MinValueValidator(low), MaxValueValidator(high)]


def _a_number(value: float) -> None:
    # NaN is neither below nor above any bound.
    if value != value:
        raise ValidationError("Enter a number.", code="invalid")


DAY = 86400


class CreditPolicy(models.TextChoices):
    MINIMUM = "min", "minimum of the valid claims"
    AVERAGE = "avg", "average of the valid claims"


class Project(CreditTotals):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects"
    )
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive projects send no new work to volunteers."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Replication policy (BOINC's per-work-unit fields, copied into each new work unit).
    min_quorum = models.PositiveSmallIntegerField(
        default=2, validators=between(1, 20), help_text="Agreeing results a work unit needs."
    )
    target_nresults = models.PositiveSmallIntegerField(
        default=2,
        validators=between(1, 20),
        help_text="Replicas sent out at first (at least the quorum).",
    )
    max_error_results = models.PositiveSmallIntegerField(
        default=3,
        validators=between(1, 100),
        help_text="A work unit fails when more of its replicas than this end in an error.",
    )
    max_total_results = models.PositiveSmallIntegerField(
        default=8,
        validators=between(1, 100),
        help_text="Replicas a work unit may have in all (at least the target).",
    )
    max_success_results = models.PositiveSmallIntegerField(
        default=5,
        validators=between(1, 100),
        help_text="A work unit fails when more results than this succeed without a quorum.",
    )
    delay_bound = models.PositiveIntegerField(
        "deadline (seconds)",
        default=3600,
        validators=between(60, 30 * DAY),
        help_text="Seconds a volunteer has to return a replica.",
    )
    max_deadline_extension = models.PositiveIntegerField(
        default=3600,
        validators=between(0, 30 * DAY),
        help_text="Seconds past the deadline that progress reports may push it (0: none).",
    )

    # Credit policy.
    credit_policy = models.CharField(
        max_length=3, choices=CreditPolicy.choices, default=CreditPolicy.MINIMUM
    )
    max_credit_per_replica = models.FloatField(
        default=100.0,
        validators=between(0, 1e9),
        help_text="Cap on the credit one replica can claim (0: no cap).",
    )
    daily_quota_per_core = models.PositiveIntegerField(
        default=2000,
        validators=between(1, 1_000_000),
        help_text="BOINC's max_jobs_per_day for a new host, per core and app.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(min_quorum__gte=1), name="project_quorum_positive"),
            models.CheckConstraint(
                condition=Q(target_nresults__gte=F("min_quorum")), name="project_target_ge_quorum"
            ),
            models.CheckConstraint(
                condition=Q(max_total_results__gte=F("target_nresults")),
                name="project_total_ge_target",
            ),
            models.CheckConstraint(
                condition=Q(max_success_results__gte=F("min_quorum")),
                name="project_success_ge_quorum",
            ),
            models.CheckConstraint(
                condition=Q(max_error_results__gte=1), name="project_errors_pos"
            ),
            models.CheckConstraint(condition=Q(delay_bound__gte=1), name="project_deadline_pos"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("compute:project", args=[self.slug])

    def clean(self) -> None:
        errors = {}
        if self.target_nresults < self.min_quorum:
            errors["target_nresults"] = "Must be at least the minimum quorum."
        if self.max_total_results < self.target_nresults:
            errors["max_total_results"] = "Must be at least the target number of replicas."
        if self.max_success_results < self.min_quorum:
            errors["max_success_results"] = "Must be at least the minimum quorum."
        if errors:
            raise ValidationError(errors)


class Comparator(models.TextChoices):
    EXACT = "exact", "exact: outputs must be equal"
    NUMERIC = "numeric", "numeric: numbers equal within a tolerance"
    CUSTOM = "custom", "custom: a Python function"


class App(models.Model):
    """A computation: the kernel volunteers run, its Python reference and how outputs compare."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="apps")
    name = models.SlugField()
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    comparator = models.CharField(max_length=10, choices=Comparator.choices, default="exact")
    tolerance = models.FloatField(
        default=1e-9,
        validators=between(0, 1e6),
        help_text="Relative and absolute tolerance of the numeric comparator.",
    )
    comparator_path = models.CharField(
        max_length=200, blank=True, help_text="Dotted path of f(a, b) -> bool for 'custom'."
    )
    reference_path = models.CharField(
        max_length=200, help_text="Dotted path of the Python reference: run(input) -> output."
    )
    assimilator_path = models.CharField(
        max_length=200,
        default="compute.assimilation.store_output",
        help_text="Dotted path of handler(workunit, output), called once per canonical output.",
    )

    homogeneous_redundancy = models.BooleanField(
        default=False, help_text="Send all replicas of a work unit to one platform class."
    )
    adaptive_replication = models.BooleanField(
        default=False,
        help_text="Trusted hosts get unreplicated work (BOINC's adaptive replication).",
    )
    spot_check_rate = models.FloatField(
        default=0.1,
        validators=between(0, 1),
        help_text="Share of unreplicated results re-computed by the Python reference.",
    )

    # Requirements a host must meet.
    min_cores = models.PositiveSmallIntegerField(
        default=1, validators=between(1, 1024), help_text="Cores a host needs to get this work."
    )
    min_memory_mb = models.PositiveIntegerField(
        default=0,
        validators=between(0, 1_000_000),
        help_text="Memory (MB) a host must report to get this work (0: no requirement).",
    )
    needs_wasm = models.BooleanField(default=False)
    needs_simd = models.BooleanField(default=False)
    needs_threads = models.BooleanField(default=False)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="app_name_unique_in_project"),
            models.CheckConstraint(
                condition=Q(spot_check_rate__gte=0) & Q(spot_check_rate__lte=1),
                name="app_spot_check_rate_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"

    def clean(self) -> None:
        from compute.dotted import resolve

        errors = {}
        for field in ("reference_path", "assimilator_path", "comparator_path"):
            path = getattr(self, field)
            if path:
                try:
                    resolve(path)
                except ImportError as e:
                    errors[field] = str(e)
        if self.comparator == Comparator.CUSTOM and not self.comparator_path:
            errors["comparator_path"] = "A custom comparator needs a dotted path."
        if errors:
            raise ValidationError(errors)

    def current_version(self) -> AppVersion | None:
        return self.versions.filter(deprecated=False).order_by("-version").first()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AppVersion(models.Model):
    """One release of an app's browser kernel: an ES module and an optional WebAssembly binary.

    Kernels are small and stored in the database, so every web process serves the same bytes
    without a shared file system; they are addressed by their sha256 and cached forever.
    """

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    kernel = models.TextField(help_text="ES module exporting run(input, progress).")
    kernel_sha256 = models.CharField(max_length=64, editable=False)
    wasm = models.BinaryField(null=True, blank=True)
    wasm_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    deprecated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["app", "version"], name="app_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.app} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        self.kernel_sha256 = sha256_hex(self.kernel.encode())
        self.wasm_sha256 = sha256_hex(bytes(self.wasm)) if self.wasm else ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and ({"kernel", "wasm"} & set(update_fields)):
            kwargs["update_fields"] = {*update_fields, "kernel_sha256", "wasm_sha256"}
        super().save(*args, **kwargs)

    def get_kernel_url(self) -> str:
        return reverse("compute:kernel", args=[self.pk, self.kernel_sha256])

    def get_wasm_url(self) -> str:
        if not self.wasm_sha256:
            return ""
        return reverse("compute:wasm", args=[self.pk, self.wasm_sha256])


class Membership(CreditTotals):
    """A volunteer's attachment to a project, with its resource share and per-project credit."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    state = models.CharField(
        max_length=10, choices=MembershipState.choices, default=MembershipState.ACTIVE
    )
    no_more_work = models.BooleanField(
        default=False, help_text="Finish current work, then take no more (BOINC's nomorework)."
    )
    resource_share = models.PositiveIntegerField(default=100)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "-total_credit", "user"], name="membership_rank_total"),
            models.Index(fields=["project", "-rac", "user"], name="membership_rank_rac"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}"
