"""Template helpers for pages that show a volunteer: the friend button of a profile page
(``{% load friends_tags %}`` then ``{% friend_button profile_user %}``)."""

from __future__ import annotations

from django import template
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist
from django.urls import NoReverseMatch

from socialgrid.friends.friendships import relation
from socialgrid.friends.models import FriendRequest, RequestState

register = template.Library()


@register.inclusion_tag("friends/includes/friend_button.html", takes_context=True)
def friend_button(context: template.Context, other: AbstractBaseUser) -> dict:
    """The right button for the signed-in viewer and ``other``: add, cancel, accept or
    decline, or a note that they are friends. Nothing for anonymous viewers or oneself."""
    request = context.get("request")
    viewer = getattr(request, "user", None)
    result: dict = {"other": other, "relation": None, "request": request}
    if viewer is None or not viewer.is_authenticated:
        return result
    result["relation"] = relation(viewer, other).value
    if result["relation"] in ("request_sent", "request_received"):
        sender, receiver = (
            (viewer, other) if result["relation"] == "request_sent" else (other, viewer)
        )
        result["pending_id"] = (
            FriendRequest.objects.filter(
                from_user=sender, to_user=receiver, state=RequestState.PENDING
            )
            .values_list("pk", flat=True)
            .first()
        )
    return result


@register.filter
def profile_url(user: AbstractBaseUser) -> str:
    """A volunteer's public profile (Profile.get_absolute_url addresses an anonymous one by
    id, never by username); empty when there is no such page."""
    try:
        return user.profile.get_absolute_url()
    except (ObjectDoesNotExist, AttributeError, NoReverseMatch):
        return ""
