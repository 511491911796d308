"""Credit earned per volunteer in a time window, for the "today" and "this week" boards.

Ranking a week by summing seven days per volunteer cannot use an index, so the week is
rolled up as well as the day: each grant adds to four rows per volunteer (the day and the
week, over all projects and in its project), and each board is then one indexed range.
``project`` empty means all projects together.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from compute.models import Project


class PeriodCredit(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # No index of its own: the ranking index starts with it.
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="Empty: all projects together.",
    )
    amount = models.FloatField(default=0.0)

    class Meta:
        abstract = True


class DailyCredit(PeriodCredit):
    day = models.DateField(help_text="The UTC day the credit was granted.")

    class Meta:
        # NULLs are distinct in a unique index, so the all-projects rows get their own.
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day"],
                condition=Q(project__isnull=True),
                name="daily_credit_all_unique",
            ),
            models.UniqueConstraint(
                fields=["user", "project", "day"],
                condition=Q(project__isnull=False),
                name="daily_credit_project_unique",
            ),
        ]
        # A ranking index per scope: PostgreSQL follows an index's order only past columns
        # fixed by an equality, and ``project IS NULL`` is not one.
        indexes = [
            models.Index(
                fields=["day", "-amount", "user"],
                condition=Q(project__isnull=True),
                name="daily_rank_all",
            ),
            models.Index(
                fields=["project", "day", "-amount", "user"],
                condition=Q(project__isnull=False),
                name="daily_rank_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount:g} for user {self.user_id} on {self.day}"


class WeeklyCredit(PeriodCredit):
    week = models.DateField(help_text="The Monday of the UTC week the credit was granted.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "week"],
                condition=Q(project__isnull=True),
                name="weekly_credit_all_unique",
            ),
            models.UniqueConstraint(
                fields=["user", "project", "week"],
                condition=Q(project__isnull=False),
                name="weekly_credit_project_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["week", "-amount", "user"],
                condition=Q(project__isnull=True),
                name="weekly_rank_all",
            ),
            models.Index(
                fields=["project", "week", "-amount", "user"],
                condition=Q(project__isnull=False),
                name="weekly_rank_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount:g} for user {self.user_id} in the week of {self.week}"
