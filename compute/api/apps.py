from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "compute.api"
    label = "api"
    verbose_name = "Project owners' API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the daily export task by name: the embedded beat has no worker to
        # autodiscover it.
        from compute.api import tasks  # noqa: F401
