from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from compute.models.credit_totals import CreditTotals
from compute.models.project import App


class Host(CreditTotals):
    """One browser install (or command-line volunteer), identified by an id it keeps."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="hosts",
        help_text="Empty for an anonymous host until an account claims it.",
    )
    name = models.CharField(max_length=120, blank=True)
    platform_class = models.CharField(
        max_length=40, default="unknown", help_text="Homogeneous redundancy class."
    )
    user_agent = models.CharField(max_length=300, blank=True)
    cores = models.PositiveSmallIntegerField(default=1)
    memory_mb = models.PositiveIntegerField(default=0)
    has_wasm = models.BooleanField(default=False)
    has_simd = models.BooleanField(default=False)
    has_threads = models.BooleanField(default=False)
    benchmark_fpops = models.FloatField(
        "benchmark (FLOPS per core)", default=1e9, help_text="Used for claimed credit."
    )
    banned = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)

    n_valid = models.PositiveIntegerField(default=0)
    n_invalid = models.PositiveIntegerField(default=0)
    n_error = models.PositiveIntegerField(default=0)

    class Meta:
        # Leaderboard order: (score descending, id), the banned left out, so a page is an
        # index range and a rank an index-only count.
        indexes = [
            models.Index(
                fields=["-total_credit", "id"], condition=Q(banned=False), name="host_rank_total"
            ),
            models.Index(fields=["-rac", "id"], condition=Q(banned=False), name="host_rank_rac"),
            models.Index(fields=["last_seen"], name="host_last_seen"),
        ]

    def __str__(self) -> str:
        return self.name or str(self.uuid)[:8]

    def can_run(self, app: App) -> bool:
        return (
            self.cores >= app.min_cores
            and (app.min_memory_mb == 0 or self.memory_mb >= app.min_memory_mb)
            and (self.has_wasm or not app.needs_wasm)
            and (self.has_simd or not app.needs_simd)
            and (self.has_threads or not app.needs_threads)
        )


class HostApp(models.Model):
    """A host's record with one app: BOINC's host_app_version (reliability and daily quota)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="app_records")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="host_records")
    consecutive_valid = models.PositiveIntegerField(default=0)
    daily_quota = models.PositiveIntegerField(help_text="Jobs per core per day.")
    jobs_today = models.PositiveIntegerField(default=0)
    quota_day = models.DateField(help_text="The UTC day jobs_today counts.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "app"], name="host_app_unique")]

    def __str__(self) -> str:
        return f"{self.host} on {self.app}"


class Volunteer(CreditTotals):
    """The compute side of an account: its credit and whether it is banned."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="volunteer",
    )
    banned = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["-total_credit", "user"],
                condition=Q(banned=False),
                name="volunteer_rank_total",
            ),
            models.Index(
                fields=["-rac", "user"], condition=Q(banned=False), name="volunteer_rank_rac"
            ),
            # The few banned, subtracted where the ban lives on another table.
            models.Index(fields=["user"], condition=Q(banned=True), name="volunteer_banned"),
        ]

    def __str__(self) -> str:
        return str(self.user)
