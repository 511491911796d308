from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from compute import pages, pictures, stats
from compute.models import AppVersion, Project

IMMUTABLE = "public, max-age=31536000, immutable"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "compute/home.html", {"page": pages.home_page()})


@require_GET
def project(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(pages.public_projects(), slug=slug)
    return render(
        request, "compute/project.html", {"page": pages.project_page(project, request.user)}
    )


@require_GET
def project_stats(request: HttpRequest, slug: str) -> JsonResponse:
    """The live numbers, for pages whose WebSocket is unavailable (polled every 10 s)."""
    project = get_object_or_404(pages.public_projects(), slug=slug)
    response = JsonResponse(stats.project_stats(project))
    response["Cache-Control"] = "max-age=5"
    return response


@require_GET
def projects_with_work(request: HttpRequest) -> JsonResponse:
    """Projects with work waiting now (all but ``?but=<slug>``), for a volunteer whose project
    has none: offered on their panel with one click to compute there instead."""
    offers = pages.projects_with_work(but=request.GET.get("but", "")[:50] or None)
    response = JsonResponse(
        {
            "projects": [
                {"slug": p.slug, "name": p.name, "url": p.get_absolute_url()} for p in offers
            ]
        }
    )
    response["Cache-Control"] = "no-store"  # it is asked when work ran out: the answer is now
    return response


@require_GET
def project_picture(request: HttpRequest, slug: str) -> HttpResponse:
    png = pictures.project_picture(slug)
    if png is None:
        raise Http404("this project has no picture")
    response = HttpResponse(png, content_type="image/png")
    # Short: the picture changes as tiles come back (project.js also adds ?v=<batch>-<done>).
    response["Cache-Control"] = "public, max-age=10"
    return response


def _version(pk: int, sha256: str, field: str) -> AppVersion:
    version = AppVersion.objects.filter(pk=pk, **{field: sha256}).first()
    if version is None:
        raise Http404("no such kernel")
    return version


@require_GET
def kernel(request: HttpRequest, pk: int, sha256: str) -> HttpResponse:
    """A kernel's ES module, addressed by its hash and so cacheable forever."""
    version = _version(pk, sha256, "kernel_sha256")
    response = HttpResponse(version.kernel, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = IMMUTABLE
    return response


@require_GET
def wasm(request: HttpRequest, pk: int, sha256: str) -> HttpResponse:
    version = _version(pk, sha256, "wasm_sha256")
    response = HttpResponse(bytes(version.wasm), content_type="application/wasm")
    response["Cache-Control"] = IMMUTABLE
    return response


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    Project.objects.exists()
    return HttpResponse("ok", content_type="text/plain")
