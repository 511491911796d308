from __future__ import annotations

from django.urls import reverse

from compute.models import Volunteer
from socialgrid.friends.friendships import befriend, send_request

URL = "/friends/"


def test_the_url_is_friends_index():
    assert reverse("friends:index") == URL


def test_it_requires_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_lists_friends_with_credit_and_rac_most_credit_first(client, user_factory):
    me, rich, poor, idle, stranger = (user_factory() for _ in range(5))
    Volunteer.objects.create(user=rich, total_credit=1234.0, rac=56.7)
    Volunteer.objects.create(user=poor, total_credit=10.0, rac=1.5)
    Volunteer.objects.create(user=stranger, total_credit=9999.0)
    for friend in (poor, idle, rich):
        befriend(me, friend)
    client.force_login(me)
    page = client.get(URL).context["page"]
    assert [row.user for row in page.friends] == [rich, poor, idle]
    assert (page.friends[0].total_credit, page.friends[0].rac) == (1234.0, 56.7)
    assert (page.friends[2].total_credit, page.friends[2].rac) == (0.0, 0.0)
    html = client.get(URL).content.decode()
    assert "1,234" in html
    assert stranger.username not in html


def test_it_shows_incoming_and_outgoing_requests_with_their_buttons(client, user_factory):
    me, asker, asked = user_factory(), user_factory(), user_factory()
    incoming = send_request(asker, me).request
    outgoing = send_request(me, asked).request
    client.force_login(me)
    html = client.get(URL).content.decode()
    assert f'action="/friends/requests/{incoming.pk}/accept/"' in html
    assert f'action="/friends/requests/{incoming.pk}/decline/"' in html
    assert f'action="/friends/requests/{outgoing.pk}/cancel/"' in html
    assert "csrfmiddlewaretoken" in html


def test_names_are_escaped(client, user_factory):
    me, friend, asker = user_factory(), user_factory(), user_factory()
    for user in (friend, asker):
        user.profile.display_name = "<script>alert(1)</script>"
        user.profile.save()
    befriend(me, friend)
    send_request(asker, me)
    client.force_login(me)
    html = client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_anonymous_friends_appear_by_their_public_name_only(client, user_factory):
    me, friend = user_factory(), user_factory(username="secretname")
    friend.profile.privacy = "anonymous"
    friend.profile.save()
    befriend(me, friend)
    client.force_login(me)
    html = client.get(URL).content.decode()
    assert f"Anonymous volunteer #{friend.pk}" in html
    assert "secretname" not in html


def test_the_page_costs_the_same_queries_for_many_friends(
    client, user_factory, django_assert_max_num_queries
):
    me = user_factory()
    for _ in range(12):
        friend = user_factory()
        Volunteer.objects.create(user=friend, total_credit=1.0)
        befriend(me, friend)
        send_request(user_factory(), me)
    client.force_login(me)
    # session, user, friend ids, friends, incoming, outgoing
    with django_assert_max_num_queries(6):
        assert client.get(URL).status_code == 200
