from __future__ import annotations

from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "socialgrid.feed"
    label = "feed"
    verbose_name = "Activity feed and badges"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the receivers, and register the tasks so that the embedded beat (which has
        # no worker to autodiscover them) finds award_rac_badges by name.
        from socialgrid.feed import receivers, tasks  # noqa: F401
