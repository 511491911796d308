from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from socialgrid.friends.friendships import befriend, send_request

TEMPLATE = Template("{% load friends_tags %}{% friend_button other %}")


def render(viewer, other) -> str:
    request = RequestFactory().get("/u/someone/")
    request.user = viewer
    return TEMPLATE.render(Context({"request": request, "other": other}))


def test_a_stranger_gets_an_add_friend_form_that_comes_back(user_factory):
    me, other = user_factory(), user_factory()
    html = render(me, other)
    # By id: an anonymous volunteer's profile must not reveal their username.
    assert f'action="/friends/request/id/{other.pk}/"' in html
    assert other.username not in html
    assert 'name="next" value="/u/someone/"' in html
    assert "Add friend" in html


def test_nothing_for_yourself_or_signed_out_visitors(user_factory):
    me = user_factory()
    assert "<form" not in render(me, me)
    assert "<form" not in render(AnonymousUser(), me)


def test_friends_pending_and_received_requests(user_factory):
    me, friend, asked, asker = (user_factory() for _ in range(4))
    befriend(me, friend)
    sent = send_request(me, asked).request
    received = send_request(asker, me).request
    assert "You are friends" in render(me, friend)
    assert f"/friends/requests/{sent.pk}/cancel/" in render(me, asked)
    html = render(me, asker)
    assert f"/friends/requests/{received.pk}/accept/" in html
    assert f"/friends/requests/{received.pk}/decline/" in html


def test_profile_links_never_show_an_anonymous_volunteers_username(user_factory):
    from socialgrid.friends.templatetags.friends_tags import profile_url

    named, anonymous = user_factory(), user_factory(username="zq_secret")
    anonymous.profile.privacy = "anonymous"
    anonymous.profile.save()
    assert profile_url(named) == named.profile.get_absolute_url()
    assert "zq_secret" not in profile_url(anonymous)
