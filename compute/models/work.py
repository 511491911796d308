from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from compute.models.host import Host
from compute.models.project import App, AppVersion, Project
from compute.states import (
    AssimilateState,
    BatchState,
    ErrorMask,
    FileDeleteState,
    Outcome,
    Replication,
    ServerState,
    ValidateState,
)


class Batch(models.Model):
    """Work units submitted together; its counters move as the assimilator finishes each one."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=120)
    submitter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    priority = models.SmallIntegerField(default=0)
    state = models.CharField(
        max_length=12, choices=BatchState.choices, default=BatchState.IN_PROGRESS
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    n_workunits = models.PositiveIntegerField(default=0)
    n_assimilated = models.PositiveIntegerField(default=0)
    n_errored = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.project.slug}: {self.name}"

    @property
    def n_done(self) -> int:
        return self.n_assimilated + self.n_errored

    @property
    def progress(self) -> float:
        return self.n_done / self.n_workunits if self.n_workunits else 0.0


class WorkUnit(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="workunits")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="workunits")
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, null=True, blank=True, related_name="workunits"
    )
    name = models.CharField(max_length=160)
    input = models.JSONField()
    priority = models.SmallIntegerField(default=0)

    min_quorum = models.PositiveSmallIntegerField()
    target_nresults = models.PositiveSmallIntegerField()
    max_error_results = models.PositiveSmallIntegerField()
    max_total_results = models.PositiveSmallIntegerField()
    max_success_results = models.PositiveSmallIntegerField()
    delay_bound = models.PositiveIntegerField()

    replication = models.CharField(
        max_length=20, choices=Replication.choices, default=Replication.FIXED
    )
    spot_check = models.BooleanField(
        default=False, help_text="The unreplicated result is re-computed by the reference."
    )
    hr_class = models.CharField(max_length=40, blank=True)

    canonical_replica = models.ForeignKey(
        "Replica", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    canonical_credit = models.FloatField(default=0.0)
    error_mask = models.PositiveIntegerField(default=0)
    n_success = models.PositiveIntegerField(
        default=0,
        help_text="Successful results received (never decreases): the one that brings it to "
        "the quorum, or arrives after the canonical result, asks for validation.",
    )
    need_validate = models.BooleanField(default=False)
    transition_time = models.DateTimeField(null=True, blank=True)
    assimilate_state = models.CharField(
        max_length=8, choices=AssimilateState.choices, default=AssimilateState.INIT
    )
    assimilate_attempts = models.PositiveSmallIntegerField(default=0)
    assimilate_error = models.TextField(blank=True)
    file_delete_state = models.CharField(
        max_length=8, choices=FileDeleteState.choices, default=FileDeleteState.INIT
    )

    created_at = models.DateTimeField(auto_now_add=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    assimilated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["transition_time"],
                condition=Q(transition_time__isnull=False),
                name="wu_transition_due",
            ),
            models.Index(fields=["id"], condition=Q(need_validate=True), name="wu_need_validate"),
            models.Index(
                fields=["id"], condition=Q(assimilate_state="ready"), name="wu_assimilate_ready"
            ),
            models.Index(
                fields=["assimilated_at"],
                condition=Q(file_delete_state="ready"),
                name="wu_file_delete_ready",
            ),
            models.Index(fields=["assimilated_at"], name="wu_assimilated_at"),
            models.Index(fields=["validated_at"], name="wu_validated_at"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_finished(self) -> bool:
        return self.assimilate_state == AssimilateState.DONE

    @property
    def error_description(self) -> str:
        return ErrorMask.describe(self.error_mask)


class Replica(models.Model):
    """BOINC's "result": one copy of a work unit, leased to one host."""

    workunit = models.ForeignKey(WorkUnit, on_delete=models.CASCADE, related_name="replicas")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveSmallIntegerField(
        default=0, help_text="0 for the first replica of a work unit, 1 for the second, ..."
    )
    server_state = models.CharField(
        max_length=12, choices=ServerState.choices, default=ServerState.UNSENT
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.INIT)
    validate_state = models.CharField(
        max_length=14, choices=ValidateState.choices, default=ValidateState.INIT
    )

    host = models.ForeignKey(
        Host, on_delete=models.SET_NULL, null=True, blank=True, related_name="replicas"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replicas",
    )
    app_version = models.ForeignKey(
        AppVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lease_token = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)

    output = models.JSONField(null=True, blank=True)
    error_reason = models.CharField(max_length=500, blank=True)
    cpu_time = models.FloatField(default=0.0)
    claimed_credit = models.FloatField(default=0.0)
    granted_credit = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            # BOINC's one_result_per_host_per_wu / one_result_per_user_per_wu, in the database.
            models.UniqueConstraint(
                fields=["workunit", "host"],
                condition=Q(host__isnull=False),
                name="replica_one_per_host",
            ),
            models.UniqueConstraint(
                fields=["workunit", "user"],
                condition=Q(user__isnull=False),
                name="replica_one_per_user",
            ),
        ]
        indexes = [
            models.Index(
                fields=["app", "id"], condition=Q(server_state="unsent"), name="replica_unsent"
            ),
            models.Index(
                fields=["deadline"],
                condition=Q(server_state="in_progress"),
                name="replica_deadline",
            ),
            models.Index(fields=["host", "server_state"], name="replica_host_state"),
            models.Index(fields=["received_at"], name="replica_received_at"),
        ]

    def __str__(self) -> str:
        return f"{self.workunit_id}_{self.ordinal}"


class AssimilatedOutput(models.Model):
    """A canonical output handed over by the default assimilator; kept after rows are purged."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="outputs")
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, null=True, blank=True, related_name="outputs"
    )
    workunit_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=160)
    input = models.JSONField()
    output = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workunit_id"]

    def __str__(self) -> str:
        return self.name


class CreditEntry(models.Model):
    """The append-only credit ledger. A replica appears at most once: credit is granted once."""

    replica_id = models.BigIntegerField(unique=True)
    workunit_id = models.BigIntegerField()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="credit_entries")
    host = models.ForeignKey(Host, on_delete=models.SET_NULL, null=True, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="credit_entries",
    )
    amount = models.FloatField()
    granted_at = models.DateTimeField()
    folded = models.BooleanField(
        default=False, help_text="Added to the project's totals by the credit fold."
    )

    class Meta:
        verbose_name_plural = "credit entries"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="credit_amount_non_negative"),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(folded=False), name="credit_unfolded"),
            models.Index(fields=["user", "granted_at"], name="credit_user_time"),
            models.Index(fields=["project", "granted_at"], name="credit_project_time"),
        ]

    def __str__(self) -> str:
        return f"{self.amount:.2f} for replica {self.replica_id}"
