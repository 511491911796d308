"""Template tags for pages the plugin app adds to: the embed snippets and the share tags of
the project and home pages (whose views belong to compute, so the absolute URLs are made
here from the request in the template context)."""

from __future__ import annotations

from django import template

from compute.models import Project
from socialgrid.plugin import sharing, snippets

register = template.Library()


def _absolute(context: template.Context):
    return context["request"].build_absolute_uri


@register.simple_tag(takes_context=True)
def plugin_snippets(context: template.Context, project: Project) -> snippets.Snippets:
    return snippets.project_snippets(project, _absolute(context))


@register.simple_tag(takes_context=True)
def project_share(context: template.Context, project: Project, has_picture: bool) -> sharing.Share:
    return sharing.project_share(project, bool(has_picture), _absolute(context))


@register.simple_tag(takes_context=True)
def home_share(context: template.Context) -> sharing.Share:
    return sharing.home_share(_absolute(context))
