"""The code a site owner pastes to embed a project: an iframe, or a one-line script that
writes the same iframe.

Both are built with ``format_html``, so a project name in the title attribute is escaped as
HTML. The page that shows them must escape them once more (they are displayed as text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.staticfiles.storage import StaticFilesStorage
from django.urls import reverse
from django.utils.html import format_html

from compute.models import Project

# Enough for the live numbers and the consent question; the page scrolls inside if the
# volunteer panel needs more (the script snippet grows the frame to fit instead).
WIDTH = 420
HEIGHT = 520
# The worker and its socket need scripts and the page's own origin (module workers and
# localStorage are refused to an opaque origin, and a socket from one sends "Origin: null").
# Popups, unsandboxed, let "open on socialgrid" and "sign in" links open a normal tab.
SANDBOX = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox"
SCRIPT_PATH = "socialgrid/plugin/embed.js"


def script_url() -> str:
    """embed.js at its plain name, never the hashed one ``static()`` gives in production: the
    snippet lives on other sites for years, and the hashed file changes with every release.
    WhiteNoise serves the plain name too, with a short cache lifetime."""
    return StaticFilesStorage().url(SCRIPT_PATH)


@dataclass(frozen=True)
class Snippets:
    embed_url: str
    iframe: str
    script: str


def frame_title(project: Project) -> str:
    return f"{project.name} on socialgrid"


def project_snippets(project: Project, absolute: Callable[[str], str]) -> Snippets:
    """``absolute`` turns a path into a full URL (``request.build_absolute_uri``)."""
    embed_url = absolute(reverse("plugin:embed", args=[project.slug]))
    iframe = format_html(
        '<iframe src="{}" title="{}" width="100%" height="{}" style="max-width:{}px;border:0" '
        'sandbox="{}" loading="lazy"></iframe>',
        embed_url,
        frame_title(project),
        HEIGHT,
        WIDTH,
        SANDBOX,
    )
    script = format_html(
        '<script src="{}" data-project="{}" data-title="{}" async></script>',
        absolute(script_url()),
        project.slug,
        frame_title(project),
    )
    return Snippets(embed_url=embed_url, iframe=str(iframe), script=str(script))
