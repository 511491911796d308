from __future__ import annotations

from django.core.exceptions import PermissionDenied

import pytest

from socialgrid.feed.models import FeedItem, Verb
from socialgrid.teams.membership import (
    TeamError,
    create_team,
    edit_team,
    join_team,
    quit_team,
    remove_member,
    team_of,
    transfer_founder,
)
from socialgrid.teams.models import Challenge, Team, TeamCredit, TeamMember


def feed(user) -> list[tuple[str, str]]:
    return [
        (item.verb, item.data["team_slug"])
        for item in FeedItem.objects.filter(actor=user).order_by("id")
    ]


def test_creating_a_team_makes_you_founder_and_member_and_publishes_it(user_factory):
    user = user_factory()
    team = create_team(user, "  Red Dwarf ", "We compute.", "https://example.org/")
    assert (team.name, team.slug, team.founder) == ("Red Dwarf", "red-dwarf", user)
    assert team_of(user) == team
    assert feed(user) == [(Verb.FOUNDED_TEAM, "red-dwarf")]
    assert FeedItem.objects.get(actor=user).data == {
        "team_name": "Red Dwarf",
        "team_slug": "red-dwarf",
    }


def test_team_names_are_unique_whatever_their_case(user_factory, team_factory):
    team_factory("Red Dwarf")
    with pytest.raises(TeamError, match="already exists"):
        create_team(user_factory(), "RED DWARF")
    assert Team.objects.count() == 1


def test_slugs_avoid_clashes_and_the_paths_of_the_app(team_factory):
    assert team_factory("New").slug == "new-2"
    assert team_factory("Challenges").slug == "challenges-2"
    assert team_factory("a-b").slug == "a-b"
    assert team_factory("A B").slug == "a-b-2"
    assert team_factory("日本").slug == "team"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.org/", "data:text/html,x"])
def test_a_team_link_must_be_http_or_https(user_factory, url):
    with pytest.raises(TeamError):
        create_team(user_factory(), "Linked", url=url)
    assert not Team.objects.exists()


def test_creating_a_team_leaves_your_current_one(team_factory, user_factory):
    old = team_factory()
    user = user_factory()
    join_team(user, old)
    new = create_team(user, "Mine")
    assert team_of(user) == new
    assert TeamMember.objects.filter(team=old).count() == 1
    assert feed(user)[-2:] == [(Verb.LEFT_TEAM, old.slug), (Verb.FOUNDED_TEAM, new.slug)]


def test_a_founder_with_members_cannot_create_another_team(team_factory, user_factory):
    team = team_factory()
    join_team(user_factory(), team)
    with pytest.raises(TeamError, match="founder"):
        create_team(team.founder, "Another")
    assert team_of(team.founder) == team
    assert Team.objects.count() == 1


def test_joining_a_team_publishes_it(team_factory, user_factory):
    team = team_factory()
    user = user_factory()
    join_team(user, team)
    assert team_of(user) == team
    assert feed(user) == [(Verb.JOINED_TEAM, team.slug)]


def test_joining_another_team_quits_the_current_one(team_factory, user_factory):
    first, second = team_factory(), team_factory()
    user = user_factory()
    join_team(user, first)
    join_team(user, second)
    assert TeamMember.objects.filter(user=user).count() == 1
    assert team_of(user) == second
    assert not first.members.filter(user=user).exists()
    assert feed(user) == [
        (Verb.JOINED_TEAM, first.slug),
        (Verb.LEFT_TEAM, first.slug),
        (Verb.JOINED_TEAM, second.slug),
    ]


def test_joining_your_own_team_again_changes_nothing(team_factory, user_factory):
    team = team_factory()
    user = user_factory()
    join_team(user, team)
    with pytest.raises(TeamError, match="already a member"):
        join_team(user, team)
    assert feed(user) == [(Verb.JOINED_TEAM, team.slug)]


def test_a_founder_with_members_cannot_join_another_team(team_factory, user_factory):
    mine, other = team_factory(), team_factory()
    join_team(user_factory(), mine)
    with pytest.raises(TeamError, match="founder"):
        join_team(mine.founder, other)
    assert team_of(mine.founder) == mine


def test_banned_volunteers_can_neither_create_nor_join(team_factory, user_factory, ban):
    team = team_factory()
    user = user_factory()
    ban(user)
    with pytest.raises(TeamError, match="Banned"):
        create_team(user, "Bad")
    with pytest.raises(TeamError, match="Banned"):
        join_team(user, team)
    assert team_of(user) is None
    assert not FeedItem.objects.filter(actor=user).exists()


def test_a_member_can_quit(team_factory, user_factory):
    team = team_factory()
    user = user_factory()
    join_team(user, team)
    quit_team(user, team)
    assert team_of(user) is None
    assert feed(user)[-1] == (Verb.LEFT_TEAM, team.slug)


def test_quitting_a_team_you_are_not_in_is_refused(team_factory, user_factory):
    mine, other = team_factory(), team_factory()
    user = user_factory()
    join_team(user, mine)
    with pytest.raises(TeamError, match="not a member"):
        quit_team(user, other)
    assert team_of(user) == mine


def test_a_founder_must_transfer_before_quitting(team_factory, user_factory):
    team = team_factory()
    member = user_factory()
    join_team(member, team)
    with pytest.raises(TeamError, match="founder"):
        quit_team(team.founder, team)
    transfer_founder(team, team.founder, member)
    quit_team(team.founder, team)
    team.refresh_from_db()
    assert team.founder == member
    assert list(team.members.values_list("user_id", flat=True)) == [member.pk]


def test_a_team_left_empty_without_history_is_deleted(team_factory):
    team = team_factory("Ephemeral")
    quit_team(team.founder, team)
    assert not Team.objects.filter(id=team.id).exists()
    assert feed(team.founder)[-1] == (Verb.LEFT_TEAM, team.slug)


def test_a_team_left_empty_with_credit_is_kept_founderless_and_revived_by_the_next_joiner(
    team_factory, user_factory
):
    from django.utils import timezone

    team = team_factory()
    TeamCredit.objects.create(
        replica_id=1, team=team, user=team.founder, amount=1.0, granted_at=timezone.now()
    )
    quit_team(team.founder, team)
    team.refresh_from_db()
    assert team.founder is None
    assert not team.members.exists()
    newcomer = user_factory()
    join_team(newcomer, team)
    team.refresh_from_db()
    assert team.founder == newcomer


def test_a_team_in_a_challenge_is_kept_when_left_empty(team_factory):
    from datetime import timedelta

    from django.utils import timezone

    team, other = team_factory(), team_factory()
    now = timezone.now()
    challenge = Challenge.objects.create(
        name="c", slug="c", starts_at=now, ends_at=now + timedelta(days=1)
    )
    challenge.teams.set([team, other])
    quit_team(team.founder, team)
    assert Team.objects.filter(id=team.id, founder=None).exists()


def test_only_the_founder_transfers_and_only_to_a_member(team_factory, user_factory, ban):
    team = team_factory()
    member, outsider, banned = user_factory(), user_factory(), user_factory()
    join_team(member, team)
    join_team(banned, team)
    ban(banned)
    with pytest.raises(PermissionDenied):
        transfer_founder(team, member, member)
    with pytest.raises(TeamError, match="current member"):
        transfer_founder(team, team.founder, outsider)
    with pytest.raises(TeamError, match="banned"):
        transfer_founder(team, team.founder, banned)
    with pytest.raises(TeamError, match="already"):
        transfer_founder(team, team.founder, team.founder)
    founder = team.founder
    transfer_founder(team, founder, member)
    team.refresh_from_db()
    assert team.founder == member
    with pytest.raises(PermissionDenied):
        transfer_founder(team, founder, founder)


def test_only_the_founder_edits_the_team(team_factory, user_factory):
    team = team_factory(description="old")
    member = user_factory()
    join_team(member, team)
    with pytest.raises(PermissionDenied):
        edit_team(team, member, "hijacked", "")
    edit_team(team, team.founder, "new words", "http://example.org/team")
    team.refresh_from_db()
    assert (team.description, team.url) == ("new words", "http://example.org/team")


def test_an_edit_with_a_bad_link_changes_nothing(team_factory):
    team = team_factory(description="old")
    with pytest.raises(TeamError):
        edit_team(team, team.founder, "new", "javascript:alert(1)")
    team.refresh_from_db()
    assert (team.description, team.url) == ("old", "")


def test_only_the_founder_removes_members_and_never_themselves(team_factory, user_factory):
    team = team_factory()
    ann, bob = user_factory(), user_factory()
    join_team(ann, team)
    join_team(bob, team)
    with pytest.raises(PermissionDenied):
        remove_member(team, ann, bob)
    with pytest.raises(TeamError):
        remove_member(team, team.founder, team.founder)
    remove_member(team, team.founder, bob)
    assert team_of(bob) is None
    assert team_of(ann) == team
    assert feed(bob)[-1] == (Verb.LEFT_TEAM, team.slug)
    with pytest.raises(TeamError, match="not a member"):
        remove_member(team, team.founder, bob)


def test_a_founder_cannot_remove_a_member_of_another_team(team_factory, user_factory):
    mine, other = team_factory(), team_factory()
    theirs = user_factory()
    join_team(theirs, other)
    with pytest.raises(TeamError, match="not a member"):
        remove_member(mine, mine.founder, theirs)
    assert team_of(theirs) == other
