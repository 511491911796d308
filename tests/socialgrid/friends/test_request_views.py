from __future__ import annotations

from django.urls import reverse

import pytest

from socialgrid.feed.models import FeedItem
from socialgrid.friends.friendships import are_friends, befriend, send_request
from socialgrid.friends.models import FriendRequest, RequestState


def send_url(user) -> str:
    return reverse("friends:send_request", args=[user.username])


def test_sending_a_request_is_a_post_to_the_profile_endpoint(client, user_factory):
    me, other = user_factory(), user_factory(username="ada.l")
    assert send_url(other) == "/friends/request/ada.l/"
    client.force_login(me)
    assert client.get(send_url(other)).status_code == 405
    response = client.post(send_url(other))
    assert response.status_code == 302
    assert response["Location"] == "/friends/"
    assert FriendRequest.objects.get().to_user == other


def test_sending_needs_sign_in(client, user_factory):
    other = user_factory()
    response = client.post(send_url(other))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not FriendRequest.objects.exists()


def test_an_unknown_or_closed_account_is_404(client, user_factory):
    client.force_login(user_factory())
    closed = user_factory(is_active=False)
    assert client.post("/friends/request/nobody/").status_code == 404
    assert client.post(send_url(closed)).status_code == 404


def test_it_goes_back_to_the_profile_but_never_off_site(client, user_factory):
    me, a, b = user_factory(), user_factory(), user_factory()
    client.force_login(me)
    response = client.post(send_url(a), {"next": "/u/someone/"})
    assert response["Location"] == "/u/someone/"
    response = client.post(send_url(b), {"next": "https://evil.example/"})
    assert response["Location"] == "/friends/"


def test_a_request_to_yourself_is_refused_with_a_message(client, user_factory):
    me = user_factory()
    client.force_login(me)
    response = client.post(send_url(me), follow=True)
    assert "to yourself" in response.content.decode()
    assert not FriendRequest.objects.exists()


def test_a_request_to_someone_who_asked_you_makes_you_friends(client, user_factory):
    me, other = user_factory(), user_factory()
    send_request(other, me)
    client.force_login(me)
    response = client.post(send_url(other), follow=True)
    assert "now friends" in response.content.decode()
    assert are_friends(me, other)


def test_requests_are_rate_limited_per_day(client, user_factory, settings):
    settings.FRIENDS_REQUESTS_PER_DAY = 3
    me = user_factory()
    client.force_login(me)
    codes = [client.post(send_url(user_factory())).status_code for _ in range(5)]
    assert codes == [302, 302, 302, 429, 429]
    assert FriendRequest.objects.count() == 3


def test_the_addressee_accepts_and_both_publish(client, user_factory):
    asker, me = user_factory(), user_factory()
    request = send_request(asker, me).request
    client.force_login(me)
    response = client.post(reverse("friends:accept", args=[request.pk]))
    assert response.status_code == 302
    assert are_friends(asker, me)
    assert FeedItem.objects.filter(verb="became_friends").count() == 2


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_nobody_answers_a_request_addressed_to_someone_else(client, user_factory, action):
    asker, addressee, mallory = user_factory(), user_factory(), user_factory()
    request = send_request(asker, addressee).request
    for intruder in (mallory, asker):
        client.force_login(intruder)
        assert client.post(reverse(f"friends:{action}", args=[request.pk])).status_code == 404
    request.refresh_from_db()
    assert request.state == RequestState.PENDING
    assert not are_friends(asker, addressee)


def test_answers_are_post_only(client, user_factory):
    asker, me = user_factory(), user_factory()
    request = send_request(asker, me).request
    client.force_login(me)
    assert client.get(reverse("friends:accept", args=[request.pk])).status_code == 405
    assert not are_friends(asker, me)


def test_declining(client, user_factory):
    asker, me = user_factory(), user_factory()
    request = send_request(asker, me).request
    client.force_login(me)
    client.post(reverse("friends:decline", args=[request.pk]))
    request.refresh_from_db()
    assert request.state == RequestState.DECLINED
    assert not are_friends(asker, me)


def test_an_answered_request_is_404(client, user_factory):
    asker, me = user_factory(), user_factory()
    request = send_request(asker, me).request
    client.force_login(me)
    client.post(reverse("friends:accept", args=[request.pk]))
    assert client.post(reverse("friends:decline", args=[request.pk])).status_code == 404


def test_only_the_sender_cancels(client, user_factory):
    me, other = user_factory(), user_factory()
    request = send_request(me, other).request
    client.force_login(other)
    assert client.post(reverse("friends:cancel", args=[request.pk])).status_code == 404
    client.force_login(me)
    assert client.post(reverse("friends:cancel", args=[request.pk])).status_code == 302
    assert not FriendRequest.objects.exists()


def test_removing_a_friend(client, user_factory):
    me, friend, stranger = user_factory(), user_factory(), user_factory()
    befriend(me, friend)
    client.force_login(me)
    assert client.post(reverse("friends:remove", args=[stranger.pk])).status_code == 404
    assert client.post(reverse("friends:remove", args=[friend.pk])).status_code == 302
    assert not are_friends(me, friend)


def test_messages_escape_names(client, user_factory):
    me, other = user_factory(), user_factory()
    other.profile.display_name = "<b>bold</b>"
    other.profile.save()
    client.force_login(me)
    html = client.post(send_url(other), follow=True).content.decode()
    assert "Friend request sent to &lt;b&gt;bold&lt;/b&gt;" in html


def test_a_request_can_name_the_user_by_id(client, user_factory):
    me, other = user_factory(), user_factory()
    client.force_login(me)
    url = reverse("friends:send_request_by_id", args=[other.pk])
    assert url == f"/friends/request/id/{other.pk}/"
    assert client.post(url).status_code == 302
    assert FriendRequest.objects.get().to_user == other
    assert client.post(reverse("friends:send_request_by_id", args=[999999])).status_code == 404
