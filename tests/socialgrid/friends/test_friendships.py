from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import pytest

from compute.models import Volunteer
from socialgrid.feed.models import FeedItem
from socialgrid.friends.friendships import (
    FriendshipError,
    Relation,
    accept,
    are_friends,
    befriend,
    cancel,
    decline,
    friend_ids,
    relation,
    remove,
    send_request,
)
from socialgrid.friends.models import FriendRequest, Friendship, RequestState


def test_befriend_stores_one_row_per_pair_lowest_id_first(user_factory):
    a, b = user_factory(), user_factory()
    assert befriend(b, a)
    assert not befriend(a, b)
    (row,) = Friendship.objects.all()
    assert (row.user_low_id, row.user_high_id) == (min(a.pk, b.pk), max(a.pk, b.pk))


def test_nobody_is_their_own_friend(user_factory):
    a = user_factory()
    assert not befriend(a, a)
    assert not are_friends(a, a)
    assert not Friendship.objects.exists()


def test_friendship_is_symmetric(user_factory):
    a, b, c = user_factory(), user_factory(), user_factory()
    befriend(a, b)
    befriend(c, a)
    assert are_friends(a, b)
    assert are_friends(b, a)
    assert not are_friends(b, c)
    assert friend_ids(a) == {b.pk, c.pk}
    assert friend_ids(b.pk) == {a.pk}
    assert friend_ids(c) == {a.pk}


def test_friend_ids_is_one_query(user_factory, django_assert_num_queries):
    a = user_factory()
    for _ in range(5):
        befriend(a, user_factory())
    with django_assert_num_queries(1):
        assert len(friend_ids(a)) == 5


def test_remove_ends_a_friendship_from_either_side(user_factory):
    a, b = user_factory(), user_factory()
    befriend(a, b)
    assert remove(b, a.pk)
    assert not are_friends(a, b)
    assert not remove(a, b.pk)


def test_a_request_is_pending_until_accepted(user_factory):
    a, b = user_factory(), user_factory()
    outcome = send_request(a, b)
    assert not outcome.became_friends
    assert outcome.request.state == RequestState.PENDING
    assert relation(a, b) == Relation.REQUEST_SENT
    assert relation(b, a) == Relation.REQUEST_RECEIVED
    assert not are_friends(a, b)


def test_accepting_makes_friends_and_publishes_for_both(user_factory):
    a, b = user_factory(), user_factory()
    b.profile.display_name = "Bea"
    b.profile.save()
    request = send_request(a, b).request
    accept(b, request.pk)
    assert are_friends(a, b)
    assert relation(a, b) == Relation.FRIENDS
    request.refresh_from_db()
    assert request.state == RequestState.ACCEPTED
    assert request.responded_at is not None
    items = {
        (i.actor_id, i.data["friend_id"], i.data["friend"])
        for i in FeedItem.objects.filter(verb="became_friends")
    }
    assert items == {(a.pk, b.pk, "Bea"), (b.pk, a.pk, a.username)}


def test_nobody_accepts_a_request_addressed_to_someone_else(user_factory):
    a, b, mallory = user_factory(), user_factory(), user_factory()
    request = send_request(a, b).request
    with pytest.raises(FriendshipError):
        accept(mallory, request.pk)
    with pytest.raises(FriendshipError):
        accept(a, request.pk)  # not even its sender
    with pytest.raises(FriendshipError):
        decline(mallory, request.pk)
    request.refresh_from_db()
    assert request.state == RequestState.PENDING
    assert not Friendship.objects.exists()


def test_a_request_is_answered_once(user_factory):
    a, b = user_factory(), user_factory()
    request = send_request(a, b).request
    accept(b, request.pk)
    with pytest.raises(FriendshipError):
        accept(b, request.pk)
    with pytest.raises(FriendshipError):
        decline(b, request.pk)
    assert FeedItem.objects.filter(verb="became_friends").count() == 2


def test_no_request_to_yourself(user_factory):
    a = user_factory()
    with pytest.raises(FriendshipError, match="yourself"):
        send_request(a, a)
    assert not FriendRequest.objects.exists()


def test_no_second_pending_request_for_a_pair(user_factory):
    a, b = user_factory(), user_factory()
    send_request(a, b)
    with pytest.raises(FriendshipError, match="already sent"):
        send_request(a, b)
    assert FriendRequest.objects.count() == 1


def test_no_request_to_a_friend(user_factory):
    a, b = user_factory(), user_factory()
    befriend(a, b)
    with pytest.raises(FriendshipError, match="already friends"):
        send_request(a, b)


def test_a_request_to_someone_who_asked_you_accepts_theirs(user_factory):
    a, b = user_factory(), user_factory()
    theirs = send_request(a, b).request
    outcome = send_request(b, a)
    assert outcome.became_friends
    assert outcome.request.pk == theirs.pk
    assert are_friends(a, b)
    assert FriendRequest.objects.count() == 1
    assert FriendRequest.objects.get().state == RequestState.ACCEPTED


def test_banned_users_cannot_send_requests(user_factory):
    a, b = user_factory(), user_factory()
    Volunteer.objects.create(user=a, banned=True)
    with pytest.raises(FriendshipError, match="can't send"):
        send_request(a, b)
    assert not FriendRequest.objects.exists()


def test_no_request_to_a_closed_account(user_factory):
    a, b = user_factory(), user_factory(is_active=False)
    with pytest.raises(FriendshipError):
        send_request(a, b)


def test_banned_volunteers_are_left_out_of_the_feed_on_acceptance(user_factory):
    a, b = user_factory(), user_factory()
    request = send_request(a, b).request
    Volunteer.objects.create(user=b, banned=True)
    accept(b, request.pk)
    assert are_friends(a, b)
    assert not FeedItem.objects.exists()


def test_declining_keeps_them_apart_and_the_sender_waits_before_asking_again(user_factory):
    a, b = user_factory(), user_factory()
    request = send_request(a, b).request
    decline(b, request.pk)
    assert not are_friends(a, b)
    assert relation(a, b) == Relation.NONE
    with pytest.raises(FriendshipError, match="later"):
        send_request(a, b)
    later = timezone.now() + timedelta(days=31)
    assert send_request(a, b, now=later).request.state == RequestState.PENDING


def test_the_decline_cooldown_is_a_setting(user_factory, settings):
    settings.FRIENDS_DECLINE_COOLDOWN_DAYS = 0
    a, b = user_factory(), user_factory()
    decline(b, send_request(a, b).request.pk)
    assert send_request(a, b).request.state == RequestState.PENDING


def test_the_declined_user_can_still_ask_the_decliner(user_factory):
    a, b = user_factory(), user_factory()
    decline(b, send_request(a, b).request.pk)
    assert send_request(b, a).request.state == RequestState.PENDING


def test_only_the_sender_cancels_a_request(user_factory):
    a, b = user_factory(), user_factory()
    request = send_request(a, b).request
    with pytest.raises(FriendshipError):
        cancel(b, request.pk)
    cancel(a, request.pk)
    assert not FriendRequest.objects.exists()
    with pytest.raises(FriendshipError):
        cancel(a, request.pk)


def test_befriend_settles_pending_requests_between_the_pair(user_factory):
    a, b = user_factory(), user_factory()
    send_request(a, b)
    befriend(b, a)
    assert FriendRequest.objects.get().state == RequestState.ACCEPTED
    assert relation(b, a) == Relation.FRIENDS
