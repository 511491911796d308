from __future__ import annotations

from django.test import Client
from django.urls import reverse
from django.utils import timezone

import pytest

from socialgrid.accounts.models import Privacy
from socialgrid.feed.models import FeedItem
from socialgrid.teams.membership import join_team, team_of
from socialgrid.teams.models import Team, TeamMember

SCRIPT = "<script>alert(1)</script>"


def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


# --- the list ---------------------------------------------------------------------------------


def test_the_list_ranks_teams_by_total_credit_or_rac(client, team_factory):
    big, fast = team_factory("Big"), team_factory("Fast")
    Team.objects.filter(id=big.id).update(total_credit=1000, rac=1)
    Team.objects.filter(id=fast.id).update(total_credit=10, rac=50)
    body = client.get(reverse("teams:list")).content.decode()
    assert body.index(">Big<") < body.index(">Fast<")
    body = client.get(reverse("teams:list"), {"sort": "rac"}).content.decode()
    assert body.index(">Fast<") < body.index(">Big<")


def test_the_list_searches_by_name(client, team_factory):
    team_factory("Penguins")
    team_factory("Walruses")
    response = client.get(reverse("teams:list"), {"q": "peng"})
    assert b"Penguins" in response.content
    assert b"Walruses" not in response.content


def test_the_list_pages_and_keeps_the_sort(client, team_factory, django_assert_max_num_queries):
    for i in range(30):
        team_factory(f"T{i:02}")
    with django_assert_max_num_queries(6):
        response = client.get(reverse("teams:list"), {"sort": "rac"})
    assert len(response.context["page"].rows) == 25
    assert b"sort=rac&amp;page=2" in response.content
    second = client.get(reverse("teams:list"), {"sort": "rac", "page": 2})
    assert len(second.context["page"].rows) == 5
    assert second.context["page"].rows[0][0] == 26


def test_the_list_survives_nonsense_parameters(client, team_factory):
    team_factory()
    response = client.get(reverse("teams:list"), {"sort": "evil", "page": "x", "q": "a" * 500})
    assert response.status_code == 200
    assert response.context["page"].sort == "total"


def test_team_names_and_searches_are_escaped_in_the_list(client, team_factory):
    team_factory(SCRIPT)
    body = client.get(reverse("teams:list")).content.decode()
    assert SCRIPT not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    body = client.get(reverse("teams:list"), {"q": SCRIPT}).content.decode()
    assert SCRIPT not in body


# --- creating ---------------------------------------------------------------------------------


def test_creating_a_team_needs_an_account(client, db):
    response = client.get(reverse("teams:new"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    client.post(reverse("teams:new"), {"name": "Sneaky"})
    assert not Team.objects.exists()


def test_a_volunteer_creates_a_team_from_the_form(client, user_factory):
    user = user_factory()
    signed_in(client, user)
    assert client.get(reverse("teams:new")).status_code == 200
    response = client.post(
        reverse("teams:new"),
        {"name": "Night  Owls", "description": "We run at night.", "url": "example.org/owls"},
    )
    team = Team.objects.get()
    assert response.status_code == 302
    assert response["Location"] == team.get_absolute_url()
    assert (team.name, team.founder, team.url) == ("Night Owls", user, "https://example.org/owls")
    assert team_of(user) == team


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "red dwarf"}, "already exists"),
        ({"name": ""}, "required"),
        ({"name": "x" * 61}, "at most 60"),
        ({"name": "Fine", "url": "javascript:alert(1)"}, "valid URL"),
        ({"name": "Fine", "url": "ftp://example.org/"}, "valid URL"),
    ],
)
def test_bad_team_input_gets_an_error_and_changes_nothing(
    client, user_factory, team_factory, data, message
):
    team_factory("Red Dwarf")
    user = user_factory()
    response = signed_in(client, user).post(reverse("teams:new"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Team.objects.count() == 1
    assert team_of(user) is None


def test_a_banned_volunteer_cannot_create_a_team(client, user_factory, ban):
    user = user_factory()
    ban(user)
    signed_in(client, user)
    assert b"suspended" in client.get(reverse("teams:new")).content
    response = client.post(reverse("teams:new"), {"name": "Banned"})
    assert "cannot create" in response.content.decode()
    assert not Team.objects.exists()


def test_team_creation_is_rate_limited(client, user_factory):
    user = user_factory()
    signed_in(client, user)
    for i in range(3):
        assert client.post(reverse("teams:new"), {"name": f"T{i}"}).status_code == 302
    response = client.post(reverse("teams:new"), {"name": "One too many"})
    assert response.status_code == 429
    assert not Team.objects.filter(name="One too many").exists()
    assert client.get(reverse("teams:new")).status_code == 200


def test_rejected_forms_do_not_use_up_the_creation_allowance(client, user_factory, team_factory):
    team_factory("Taken")
    signed_in(client, user_factory())
    for _ in range(5):
        assert client.post(reverse("teams:new"), {"name": "taken"}).status_code == 200
    assert client.post(reverse("teams:new"), {"name": "Free"}).status_code == 302


def test_forms_need_a_csrf_token(user_factory, team_factory):
    client = Client(enforce_csrf_checks=True)
    user = user_factory()
    client.force_login(user)
    team = team_factory()
    assert client.post(reverse("teams:new"), {"name": "X"}).status_code == 403
    assert client.post(reverse("teams:join", args=[team.slug])).status_code == 403
    assert not Team.objects.filter(name="X").exists()
    assert team_of(user) is None


# --- the team page ----------------------------------------------------------------------------


def test_an_unknown_team_is_not_found(client, db):
    assert client.get(reverse("teams:detail", args=["nope"])).status_code == 404


def test_the_team_page_shows_members_by_public_name_with_their_team_credit(
    client, team_factory, user_factory, ban
):
    team = team_factory("Owls", description="Night shift")
    anon, named, banned = user_factory(), user_factory("carol"), user_factory("mallory")
    anon.profile.privacy = Privacy.ANONYMOUS
    anon.profile.save()
    named.profile.display_name = "Carol C."
    named.profile.save()
    for u in (anon, named, banned):
        join_team(u, team)
    ban(banned)
    TeamMember.objects.filter(user=named).update(credit=42.5)
    body = client.get(team.get_absolute_url()).content.decode()
    assert f"Anonymous volunteer #{anon.pk}" in body
    assert anon.username not in body
    assert "Carol C." in body
    assert "42.5" in body
    assert "mallory" not in body
    assert f"Founded by <strong>{team.founder.username}</strong>" in body
    assert 'property="og:title" content="Owls"' in body
    assert 'property="og:description" content="Night shift"' in body
    assert "share-links" in body
    assert "Sign in to join" in body


def test_the_team_page_needs_few_queries_however_many_members(
    client, team_factory, user_factory, django_assert_max_num_queries
):
    team = team_factory()
    for _ in range(20):
        join_team(user_factory(), team)
    signed_in(client, team.founder)
    with django_assert_max_num_queries(12):
        assert client.get(team.get_absolute_url()).status_code == 200


def test_team_text_is_escaped_everywhere(client, user_factory):
    from socialgrid.teams.membership import create_team

    founder = user_factory()
    founder.profile.display_name = SCRIPT
    founder.profile.save()
    team = create_team(founder, SCRIPT, description=f"{SCRIPT}\nline two")
    body = client.get(team.get_absolute_url()).content.decode()
    assert SCRIPT not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>line two" in body
    assert 'content="&lt;script&gt;alert(1)&lt;/script&gt;"' in body


def test_the_team_link_is_marked_as_user_content(client, team_factory):
    team = team_factory(url="https://example.org/")
    body = client.get(team.get_absolute_url()).content.decode()
    assert '<a href="https://example.org/" rel="nofollow ugc noopener noreferrer"' in body


def test_members_see_quit_and_others_see_join(client, team_factory, user_factory):
    team = team_factory()
    member, other = user_factory(), user_factory()
    join_team(member, team)
    body = signed_in(client, member).get(team.get_absolute_url()).content.decode()
    assert reverse("teams:quit", args=[team.slug]) in body
    assert reverse("teams:edit", args=[team.slug]) not in body
    assert reverse("teams:remove", args=[team.slug]) not in body
    body = signed_in(client, other).get(team.get_absolute_url()).content.decode()
    assert reverse("teams:join", args=[team.slug]) in body


def test_the_founder_sees_edit_and_member_actions(client, team_factory, user_factory):
    team = team_factory()
    join_team(user_factory(), team)
    body = signed_in(client, team.founder).get(team.get_absolute_url()).content.decode()
    assert reverse("teams:edit", args=[team.slug]) in body
    assert reverse("teams:transfer", args=[team.slug]) in body
    assert reverse("teams:remove", args=[team.slug]) in body
    assert "before you leave" in body


# --- editing ----------------------------------------------------------------------------------


def test_nobody_but_the_founder_edits_a_team(client, team_factory, user_factory):
    team = team_factory(description="original")
    member, stranger = user_factory(), user_factory()
    join_team(member, team)
    url = reverse("teams:edit", args=[team.slug])
    for user in (member, stranger):
        signed_in(client, user)
        assert client.get(url).status_code == 403
        assert client.post(url, {"description": "hacked", "url": ""}).status_code == 403
    client.logout()
    assert client.post(url, {"description": "hacked"}).status_code == 302
    team.refresh_from_db()
    assert team.description == "original"


def test_the_founder_edits_description_and_link_but_not_the_name(client, team_factory):
    team = team_factory("Fixed")
    signed_in(client, team.founder)
    url = reverse("teams:edit", args=[team.slug])
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"name": "Renamed", "description": "Updated", "url": "http://example.org/"}
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.name, team.description, team.url) == ("Fixed", "Updated", "http://example.org/")


def test_a_bad_link_in_an_edit_changes_nothing(client, team_factory):
    team = team_factory(description="original")
    signed_in(client, team.founder)
    url = reverse("teams:edit", args=[team.slug])
    response = client.post(url, {"description": "new", "url": "javascript:alert(1)"})
    assert response.status_code == 200
    assert "valid URL" in response.content.decode()
    team.refresh_from_db()
    assert (team.description, team.url) == ("original", "")


# --- joining and quitting ---------------------------------------------------------------------


def test_changes_are_post_only(client, team_factory):
    team = team_factory()
    signed_in(client, team.founder)
    for name in ("join", "quit", "transfer", "remove"):
        assert client.get(reverse(f"teams:{name}", args=[team.slug])).status_code == 405


def test_joining_from_the_page_moves_you_between_teams(client, team_factory, user_factory):
    first, second = team_factory(), team_factory()
    user = user_factory()
    signed_in(client, user)
    assert client.post(reverse("teams:join", args=[first.slug])).status_code == 302
    assert "You will leave" in client.get(second.get_absolute_url()).content.decode()
    client.post(reverse("teams:join", args=[second.slug]))
    assert TeamMember.objects.filter(user=user).count() == 1
    assert team_of(user) == second


def test_joining_needs_an_account(client, team_factory):
    team = team_factory()
    response = client.post(reverse("teams:join", args=[team.slug]))
    assert "/accounts/login/" in response["Location"]
    assert team.members.count() == 1


def test_a_refused_join_says_why(client, team_factory, user_factory):
    mine, other = team_factory(), team_factory()
    join_team(user_factory(), mine)
    signed_in(client, mine.founder)
    page = client.get(other.get_absolute_url()).content.decode()
    assert reverse("teams:join", args=[other.slug]) not in page
    assert "before you join another team" in page
    response = client.post(reverse("teams:join", args=[other.slug]), follow=True)
    assert "make another member its founder" in response.content.decode()
    assert team_of(mine.founder) == mine


def test_a_banned_volunteer_cannot_join_from_the_page(client, team_factory, user_factory, ban):
    team = team_factory()
    user = user_factory()
    ban(user)
    signed_in(client, user)
    assert "suspended" in client.get(team.get_absolute_url()).content.decode()
    client.post(reverse("teams:join", args=[team.slug]))
    assert team_of(user) is None


def test_quitting_the_last_seat_of_a_new_team_deletes_it(client, team_factory):
    team = team_factory()
    signed_in(client, team.founder)
    response = client.post(reverse("teams:quit", args=[team.slug]))
    assert response["Location"] == reverse("teams:list")
    assert not Team.objects.exists()


def test_a_member_quits_from_the_page(client, team_factory, user_factory):
    team = team_factory()
    user = user_factory()
    join_team(user, team)
    signed_in(client, user)
    response = client.post(reverse("teams:quit", args=[team.slug]))
    assert response["Location"] == team.get_absolute_url()
    assert team_of(user) is None


def test_joining_and_quitting_are_rate_limited(client, team_factory, user_factory):
    a, b = team_factory(), team_factory()
    user = user_factory()
    signed_in(client, user)
    for i in range(20):
        client.post(reverse("teams:join", args=[(a if i % 2 else b).slug]))
    assert client.post(reverse("teams:join", args=[b.slug])).status_code == 429
    assert FeedItem.objects.filter(actor=user).count() <= 39


# --- founder actions --------------------------------------------------------------------------


def test_only_the_founder_transfers_founder(client, team_factory, user_factory):
    team = team_factory()
    member = user_factory()
    join_team(member, team)
    signed_in(client, member)
    url = reverse("teams:transfer", args=[team.slug])
    assert client.post(url, {"user": member.pk}).status_code == 403
    team.refresh_from_db()
    assert team.founder != member
    signed_in(client, team.founder)
    assert client.post(url, {"user": member.pk}).status_code == 302
    team.refresh_from_db()
    assert team.founder == member


def test_founder_goes_only_to_a_member(client, team_factory, user_factory):
    team = team_factory()
    outsider = user_factory()
    signed_in(client, team.founder)
    url = reverse("teams:transfer", args=[team.slug])
    response = client.post(url, {"user": outsider.pk}, follow=True)
    assert "Only a current member" in response.content.decode()
    assert client.post(url, {"user": "x"}).status_code == 404
    team.refresh_from_db()
    assert team.founder_id != outsider.pk


def test_only_the_founder_removes_members(client, team_factory, user_factory):
    team = team_factory()
    ann, bob = user_factory(), user_factory()
    join_team(ann, team)
    join_team(bob, team)
    url = reverse("teams:remove", args=[team.slug])
    signed_in(client, ann)
    assert client.post(url, {"user": bob.pk}).status_code == 403
    assert team_of(bob) == team
    signed_in(client, team.founder)
    assert client.post(url, {"user": bob.pk}).status_code == 302
    assert team_of(bob) is None
    assert team_of(ann) == team


def test_a_founder_cannot_act_on_another_team(client, team_factory, user_factory):
    mine, theirs = team_factory(), team_factory()
    member = user_factory()
    join_team(member, theirs)
    signed_in(client, mine.founder)
    assert (
        client.post(reverse("teams:remove", args=[theirs.slug]), {"user": member.pk}).status_code
        == 403
    )
    assert (
        client.post(reverse("teams:transfer", args=[theirs.slug]), {"user": member.pk}).status_code
        == 403
    )
    assert client.get(reverse("teams:edit", args=[theirs.slug])).status_code == 403
    assert team_of(member) == theirs


def test_member_credit_shows_after_the_fold(client, team_factory, project_factory):
    from django.db import transaction

    from compute import credit
    from socialgrid.teams.credit import fold_team_credit

    team = team_factory()
    project = project_factory()
    now = timezone.now()
    with transaction.atomic():
        credit.grant([credit.Grant(1, 1, project.id, None, team.founder.pk, 12.5, now)], now)
    fold_team_credit()
    body = client.get(team.get_absolute_url()).content.decode()
    assert "12.5" in body
