from __future__ import annotations

from django.conf import settings
from django.db import models


class Verb(models.TextChoices):
    JOINED_PROJECT = "joined_project", "joined a project"
    CREDIT_MILESTONE = "credit_milestone", "reached a credit milestone"
    BADGE = "badge", "earned a badge"
    FOUNDED_TEAM = "founded_team", "founded a team"
    JOINED_TEAM = "joined_team", "joined a team"
    LEFT_TEAM = "left_team", "left a team"
    BECAME_FRIENDS = "became_friends", "became friends"
    RECRUITED = "recruited", "recruited a volunteer"
    CHALLENGE = "challenge", "team challenge"


class FeedItem(models.Model):
    """Something a volunteer did, shown to them and their friends."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_items"
    )
    verb = models.CharField(max_length=20, choices=Verb.choices)
    project = models.ForeignKey(
        "compute.Project", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["actor", "-created_at"], name="feed_actor_time")]

    def __str__(self) -> str:
        return f"{self.actor} {self.get_verb_display()}"


class BadgeKind(models.TextChoices):
    CREDIT = "credit", "credit milestone"
    RAC_TOP = "rac_top", "top volunteers by recent average credit"
    RECRUITS = "recruits", "recruiter"


def badge_title(kind: str, level: int) -> str:
    """A badge's short name ("1,000 credits", "Top 5%", "10 recruits")."""
    if kind == BadgeKind.CREDIT:
        return f"{level:,} credit" if level == 1 else f"{level:,} credits"
    if kind == BadgeKind.RAC_TOP:
        return f"Top {level}%"
    if kind == BadgeKind.RECRUITS:
        return f"{level:,} recruit" if level == 1 else f"{level:,} recruits"
    return f"{kind} {level}"


def badge_description(kind: str, level: int) -> str:
    if kind == BadgeKind.CREDIT:
        return f"Earned {badge_title(kind, level)} in total."
    if kind == BadgeKind.RAC_TOP:
        return f"Among the top {level}% of volunteers by recent average credit."
    if kind == BadgeKind.RECRUITS:
        people = "volunteer" if level == 1 else "volunteers"
        return f"Brought {level:,} new {people} to socialgrid."
    return ""


class Badge(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="badges"
    )
    kind = models.CharField(max_length=10, choices=BadgeKind.choices)
    level = models.PositiveIntegerField(
        help_text="credit: the milestone; rac_top: the percentile (1, 5, 25); recruits: the count"
    )
    awarded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "level"], name="badge_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.level}"

    @property
    def title(self) -> str:
        return badge_title(self.kind, self.level)

    @property
    def description(self) -> str:
        return badge_description(self.kind, self.level)
