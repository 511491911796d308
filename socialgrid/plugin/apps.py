from __future__ import annotations

from django.apps import AppConfig


class PluginConfig(AppConfig):
    name = "socialgrid.plugin"
    label = "plugin"
    verbose_name = "Embeddable plugin"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from socialgrid.plugin.checks import check_plugin_settings

        checks.register(check_plugin_settings)
