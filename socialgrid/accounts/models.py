from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.urls import reverse

ANONYMOUS_PREFIX = "Anonymous volunteer"


def is_web_url(url: str) -> bool:
    """An absolute http(s) URL: the only kind a profile may show as an image."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


class Privacy(models.TextChoices):
    NAMED = "named", "Show my name on leaderboards and in feeds"
    ANONYMOUS = "anonymous", "Show me anonymously"


class Profile(models.Model):
    """How a volunteer appears to others."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    display_name = models.CharField(max_length=60, blank=True)
    avatar_url = models.URLField(max_length=500, blank=True)
    bio = models.CharField(max_length=300, blank=True)
    privacy = models.CharField(max_length=10, choices=Privacy.choices, default=Privacy.NAMED)
    share_stats = models.BooleanField(
        "share my statistics",
        default=False,
        help_text="Include my name, credit and hosts in the daily files for statistics sites.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.public_name

    def get_absolute_url(self) -> str:
        """The public profile page. An anonymous volunteer's page is addressed by id, never by
        username: a username in a link would undo the anonymity."""
        if self.privacy == Privacy.ANONYMOUS:
            return reverse("accounts:anonymous_profile", args=[self.user_id])
        return reverse("accounts:profile", args=[self.user.get_username()])

    @property
    def is_anonymous_choice(self) -> bool:
        return self.privacy == Privacy.ANONYMOUS

    @property
    def public_name(self) -> str:
        if self.privacy == Privacy.ANONYMOUS:
            return f"{ANONYMOUS_PREFIX} #{self.user_id}"
        return self.display_name or self.user.get_username()

    @property
    def public_avatar_url(self) -> str:
        """The avatar others may see: none for the anonymous, and only http(s) URLs (checked
        again here, whatever reached the database). Render it with
        ``referrerpolicy="no-referrer"`` so the image host learns nothing about our pages."""
        if self.privacy == Privacy.ANONYMOUS or not is_web_url(self.avatar_url):
            return ""
        return self.avatar_url

    @property
    def public_bio(self) -> str:
        return "" if self.privacy == Privacy.ANONYMOUS else self.bio
