"""Teams (BOINC's), their members, the team's share of the credit ledger, and challenges."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from compute.models import CreditTotals

# A team's link is shown as an <a href>: anything but http(s) (javascript:, data:, ftp:) is
# refused at the model, so no form or admin path can store one.
http_url = URLValidator(schemes=["http", "https"])

# Paths under /teams/ that a team's slug must not shadow.
RESERVED_SLUGS = frozenset({"new", "challenges"})


class Team(CreditTotals):
    """A group of volunteers whose credit adds up.

    ``total_credit`` and ``rac`` count only credit earned by members while they were members
    (the :class:`TeamCredit` rows), folded in periodically by
    :func:`socialgrid.teams.credit.fold_team_credit`.
    """

    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=70, unique=True)
    description = models.TextField(max_length=2000, blank=True)
    url = models.URLField("web site", max_length=300, blank=True, validators=[http_url])
    founder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="founded_teams",
        help_text="Empty when the founder's account is gone or the team was left empty.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-total_credit", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="team_name_unique_ci",
                violation_error_message="A team with this name already exists.",
            ),
        ]
        indexes = [
            models.Index(fields=["-total_credit", "id"], name="team_total_rank"),
            models.Index(fields=["-rac", "id"], name="team_rac_rank"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("teams:detail", args=[self.slug])


class TeamMember(models.Model):
    """A user's place in a team; one row per user, so nobody is in two teams."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_membership"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    joined_at = models.DateTimeField(default=timezone.now)
    credit = models.FloatField(
        default=0.0, help_text="Credit earned for this team since joining (folded periodically)."
    )

    class Meta:
        indexes = [models.Index(fields=["team", "-credit", "id"], name="team_member_credit")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class TeamCredit(models.Model):
    """The team's share of the credit ledger: one row per replica granted to a member.

    Written in the granting transaction, so it commits exactly when the grant does; the
    unique replica id keeps a replica from counting twice.
    """

    replica_id = models.BigIntegerField(unique=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="credits")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    amount = models.FloatField()
    granted_at = models.DateTimeField()
    folded = models.BooleanField(
        default=False, help_text="Added to the team's and member's totals by the team fold."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="team_credit_non_negative"),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(folded=False), name="team_credit_unfolded"),
            # Challenge standings: a range of granted_at for each of a few teams.
            models.Index(fields=["team", "granted_at"], name="team_credit_time"),
        ]

    def __str__(self) -> str:
        return f"{self.amount:.2f} for {self.team_id} (replica {self.replica_id})"


class Challenge(models.Model):
    """Teams racing for credit between two instants: whoever earns most in the window wins."""

    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=90, unique=True)
    description = models.TextField(max_length=2000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="created_challenges",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    teams = models.ManyToManyField(Team, related_name="challenges")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="challenge_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["-ends_at"], name="challenge_end")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("teams:challenge", args=[self.slug])

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if now < self.starts_at:
            return "upcoming"
        if now < self.ends_at:
            return "running"
        return "finished"
