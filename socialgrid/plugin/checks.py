"""System checks: a bad EMBED_ALLOWED_ORIGINS fails ``manage.py check`` (and every start-up
that runs the checks) with the variable's name, instead of a broken header at request time."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from socialgrid.plugin import framing


def check_plugin_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    try:
        framing.embed_ancestors()
    except ImproperlyConfigured as e:
        messages.append(checks.Error(str(e), id="plugin.E001"))
    secret = getattr(settings, "FACEBOOK_APP_SECRET", "")
    if not isinstance(secret, str):
        messages.append(checks.Error("FACEBOOK_APP_SECRET must be a string", id="plugin.E002"))
    return messages
