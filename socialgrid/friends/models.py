from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Friendship(models.Model):
    """Two volunteers who are friends. Symmetric, so stored once per pair: the lower user id
    in ``user_low``; the constraints make a second row for the same pair impossible."""

    user_low = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    user_high = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_low", "user_high"], name="friendship_pair_once"),
            models.CheckConstraint(
                condition=Q(user_low__lt=F("user_high")), name="friendship_pair_ordered"
            ),
        ]
        # user_low lookups use the unique index; this one serves user_high lookups.
        indexes = [models.Index(fields=["user_high"], name="friendship_high")]

    def __str__(self) -> str:
        return f"{self.user_low_id} ↔ {self.user_high_id}"


class RequestState(models.TextChoices):
    PENDING = "pending", "pending"
    ACCEPTED = "accepted", "accepted"
    DECLINED = "declined", "declined"


class FriendRequest(models.Model):
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="friend_requests_sent"
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="friend_requests_received",
    )
    state = models.CharField(
        max_length=10, choices=RequestState.choices, default=RequestState.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["from_user", "to_user"],
                condition=Q(state="pending"),
                name="friend_request_pending_once",
            ),
            models.CheckConstraint(
                condition=~Q(from_user=F("to_user")), name="friend_request_not_to_self"
            ),
        ]
        indexes = [
            # The incoming list of /friends/; outgoing ones use the unique pending index.
            models.Index(
                fields=["to_user", "-created_at"],
                condition=Q(state="pending"),
                name="friend_request_incoming",
            ),
            # The cool-down after a declined request.
            models.Index(
                fields=["from_user", "to_user", "-responded_at"], name="friend_request_pair"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_user_id} → {self.to_user_id} ({self.state})"
