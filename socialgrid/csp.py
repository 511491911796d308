"""Content-Security-Policy for pages and for the Web Workers that run kernels.

Pages get ``CSP_PAGE_POLICY``: scripts, workers, styles, fonts and connections (HTTP and
WebSocket) only from this server; images also from https (avatars from sign-in providers);
no plugins, no ``<base>`` elsewhere, no framing (the plugin's embed pages set their own
``frame-ancestors``, which wins for that one directive). Inline scripts are not allowed;
inline ``style`` attributes are (a few templates size avatars with them).

A dedicated worker takes its policy from the response that served its script, not from the
page, so the worker scripts under ``static/socialgrid/worker/`` are served (by WhiteNoise,
through :func:`add_static_headers`) with ``CSP_WORKER_POLICY``: a kernel, imported from a
``blob:`` URL after its sha256 checked out, may load scripts and WebAssembly and fetch only
from this server — it cannot send what it computes, or anything else, to another host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
WORKER_SCRIPTS = "/socialgrid/worker/"


def render(policy: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in policy.items())


def parse(header: str) -> dict[str, list[str]]:
    policy: dict[str, list[str]] = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens:
            policy[tokens[0].lower()] = tokens[1:]
    return policy


def page_policy(existing: str | None = None) -> str:
    """The page policy, with the directives a view set itself (``existing``) taking over."""
    policy = dict(settings.CSP_PAGE_POLICY)
    if existing:
        policy.update(parse(existing))
    return render(policy)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response[HEADER] = page_policy(response.get(HEADER))
        return response


def add_static_headers(headers, path: str, url: str) -> None:
    """WhiteNoise's ``WHITENOISE_ADD_HEADERS_FUNCTION``: the worker policy on worker scripts."""
    if WORKER_SCRIPTS in url and url.endswith(".js"):
        headers[HEADER] = render(settings.CSP_WORKER_POLICY)
