from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from compute.credit_display import format_credit
from socialgrid.accounts import pages
from socialgrid.accounts.forms import ProfileForm
from socialgrid.accounts.models import Profile
from socialgrid.ratelimit import limited, ratelimit


@require_GET
def profile(request: HttpRequest, username: str) -> HttpResponse:
    found = pages.find_named_profile(username, request.user)
    if found is None:
        raise Http404("no such volunteer")
    return _render_profile(request, found)


@require_GET
def anonymous_profile(request: HttpRequest, user_id: int) -> HttpResponse:
    found = pages.find_anonymous_profile(user_id, request.user)
    if found is None:
        raise Http404("no such volunteer")
    return _render_profile(request, found)


def _render_profile(request: HttpRequest, profile: Profile) -> HttpResponse:
    page = pages.profile_page(profile, request.user)
    name = profile.public_name
    avatar = profile.public_avatar_url
    context = {
        "page": page,
        "public_url": profile.get_absolute_url(),
        "share_url": request.build_absolute_uri(profile.get_absolute_url()),
        "share_title": f"{name} on socialgrid",
        "share_description": (
            f"{name} has earned {format_credit(page.total_credit)} credit by lending their "
            "browser to volunteer computing projects on socialgrid."
        ),
        # Crawlers fetch og:image themselves; only offer them an https picture.
        "share_image": avatar if avatar.startswith("https://") else "",
    }
    return render(request, "accounts/profile.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit("profile_edit", limit=30, window=3600)
def edit_profile(request: HttpRequest) -> HttpResponse:
    # Always the signed-in volunteer's own profile: there is no id to tamper with.
    profile, _ = Profile.objects.select_related("user").get_or_create(user=request.user)
    # Before binding: an invalid form leaves its unsaved values on the instance.
    public_url = profile.get_absolute_url()
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=profile)
        if form.is_valid():
            form.save()
            messages.success(request, "Your profile is saved.")
            return redirect("accounts:edit_profile")
    else:
        form = ProfileForm(instance=profile)
    return render(request, "accounts/profile_edit.html", {"form": form, "public_url": public_url})


def too_many_requests(request: HttpRequest) -> HttpResponse:
    """allauth's rate-limit response (``handler429`` in the root URLconf)."""
    return limited(request, "Too many attempts. Wait a few minutes, then try again.")
