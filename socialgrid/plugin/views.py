"""The plugin page (/embed/<slug>/) and the Facebook canvas page (/embed/facebook/).

Both are the only pages of the site that other sites may frame (framing.py). Neither
changes anything: the computing itself happens over the worker socket, after the visitor
consents on the page.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from compute.pages import public_projects
from socialgrid.plugin import facebook, framing
from socialgrid.plugin.pages import plugin_page


@require_GET
@framing.frameable_by(framing.embed_ancestors)
def embed(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(public_projects(), slug=slug)
    return render(request, "plugin/embed.html", {"page": plugin_page(project, request.user)})


# Facebook's POST comes from its own page, signed with the app secret: the signature stands
# in for the CSRF token (and a cross-site frame would not carry our CSRF cookie anyway).
@csrf_exempt
@require_POST
@framing.frameable_by(framing.facebook_ancestors)
def facebook_canvas(request: HttpRequest) -> HttpResponse:
    secret = getattr(settings, "FACEBOOK_APP_SECRET", "")
    if not secret:
        raise Http404("the Facebook app is not set up on this site")
    try:
        signed = facebook.parse_signed_request(request.POST.get("signed_request"), secret)
    except facebook.InvalidSignedRequest as e:
        return _refuse(request, e.message)
    slug = request.GET.get("project", "")
    if not slug:
        return _refuse(
            request,
            "No project was named: the canvas URL in the Facebook app settings must end "
            "in ?project=<project slug>.",
        )
    project = get_object_or_404(public_projects(), slug=slug)
    page = plugin_page(project, request.user, signed=signed)
    return render(request, "plugin/embed.html", {"page": page})


def _refuse(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "plugin/facebook_error.html", {"message": message}, status=400)
