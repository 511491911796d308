from __future__ import annotations

from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from compute.models import AppVersion, Project
from compute.states import BatchState

IMMUTABLE = "public, max-age=31536000, immutable"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    projects = Project.objects.filter(is_public=True).annotate(
        n_volunteers=Count("memberships", filter=Q(memberships__state="active"))
    )
    return render(request, "compute/home.html", {"projects": projects})


@require_GET
def project(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug, is_public=True)
    batches = project.batches.filter(state=BatchState.IN_PROGRESS)[:20]
    return render(request, "compute/project.html", {"project": project, "batches": batches})


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
