from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from socialgrid.friends import friendships
from socialgrid.friends.friendships import FriendshipError
from socialgrid.friends.models import FriendRequest, RequestState
from socialgrid.friends.pages import friends_page
from socialgrid.ratelimit import hit, limited

DEFAULT_REQUESTS_PER_DAY = 30


def _back(request: HttpRequest) -> HttpResponseRedirect:
    """Back to the page the form was on (a profile, /friends/), never off-site."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("friends:index")
    return HttpResponseRedirect(target)


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "friends/index.html", {"page": friends_page(request.user)})


@require_POST
@login_required
def send_request(
    request: HttpRequest, username: str | None = None, user_id: int | None = None
) -> HttpResponse:
    # Read per request (not in a decorator) so the limit can be changed in settings.
    per_day = getattr(settings, "FRIENDS_REQUESTS_PER_DAY", DEFAULT_REQUESTS_PER_DAY)
    if not hit(f"friends:request:u{request.user.pk}", per_day, 86400):
        return limited(request, "You have sent many friend requests today; try again tomorrow.")
    lookup = {"pk": user_id} if user_id is not None else {"username": username}
    to_user = get_object_or_404(get_user_model(), is_active=True, **lookup)
    try:
        outcome = friendships.send_request(request.user, to_user)
    except FriendshipError as e:
        messages.error(request, str(e))
    else:
        name = to_user.profile.public_name
        if outcome.became_friends:
            messages.success(request, f"You and {name} are now friends.")
        else:
            messages.success(request, f"Friend request sent to {name}.")
    return _back(request)


def _incoming(request: HttpRequest, pk: int) -> FriendRequest:
    # Only the addressee finds it: anyone else gets a 404, not a hint that it exists.
    return get_object_or_404(
        FriendRequest.objects.select_related("from_user__profile"),
        pk=pk,
        to_user=request.user,
        state=RequestState.PENDING,
    )


@require_POST
@login_required
def accept(request: HttpRequest, pk: int) -> HttpResponse:
    friend_request = _incoming(request, pk)
    try:
        friendships.accept(request.user, friend_request.pk)
    except FriendshipError as e:
        messages.error(request, str(e))
    else:
        name = friend_request.from_user.profile.public_name
        messages.success(request, f"You and {name} are now friends.")
    return _back(request)


@require_POST
@login_required
def decline(request: HttpRequest, pk: int) -> HttpResponse:
    friend_request = _incoming(request, pk)
    try:
        friendships.decline(request.user, friend_request.pk)
    except FriendshipError as e:
        messages.error(request, str(e))
    else:
        messages.info(request, "Friend request declined.")
    return _back(request)


@require_POST
@login_required
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(FriendRequest, pk=pk, from_user=request.user, state=RequestState.PENDING)
    try:
        friendships.cancel(request.user, pk)
    except FriendshipError as e:
        messages.error(request, str(e))
    else:
        messages.info(request, "Friend request withdrawn.")
    return _back(request)


@require_POST
@login_required
def remove(request: HttpRequest, user_id: int) -> HttpResponse:
    if not friendships.remove(request.user, user_id):
        raise Http404("not one of your friends")
    messages.info(request, "Removed from your friends.")
    return _back(request)
