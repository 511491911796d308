from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class InviteCode(models.Model):
    """A volunteer's invite link: one personal code, and one per project they invite to.

    Codes are random (not derived from the user id), so a link cannot be guessed from
    another one, and stable: the same user and project always get the same code back.
    """

    code = models.CharField(max_length=16, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invite_codes"
    )
    project = models.ForeignKey(
        "compute.Project",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for the personal link (the landing page shows the inviter's most "
        "active project).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(project__isnull=True), name="invite_code_personal"
            ),
            models.UniqueConstraint(
                fields=["user", "project"],
                condition=Q(project__isnull=False),
                name="invite_code_per_project",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("invites:landing", args=[self.code])


class Referral(models.Model):
    """A sign-up attributed to whoever invited them. It counts (``counted_at``) once the
    recruit returns valid work, World Community Grid's rule."""

    recruit = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referral"
    )
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referrals"
    )
    project = models.ForeignKey(
        "compute.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    invite_code = models.ForeignKey(
        InviteCode, on_delete=models.SET_NULL, null=True, blank=True, related_name="referrals"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    counted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The credit_granted receiver looks up the granted users here on every grant;
            # this index holds only the few referrals still waiting to count.
            models.Index(
                fields=["recruit"], condition=Q(counted_at__isnull=True), name="referral_uncounted"
            ),
            models.Index(fields=["inviter", "-created_at"], name="referral_inviter_time"),
        ]

    def __str__(self) -> str:
        return f"{self.recruit_id} invited by {self.inviter_id}"


class InviteEmail(models.Model):
    """One invitation e-mail sent, kept to enforce the daily limit per sender. The
    recipient's address is not stored: it is not ours to keep."""

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    invite_code = models.ForeignKey(
        InviteCode, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    sent_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["sender", "sent_at"], name="invite_email_sender_time")]

    def __str__(self) -> str:
        return f"invitation from {self.sender_id} at {self.sent_at:%Y-%m-%d %H:%M}"
