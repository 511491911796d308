from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

import pytest

from compute.models import Host
from socialgrid.accounts.models import Privacy, Profile
from socialgrid.leaderboards import pages
from socialgrid.leaderboards.boards import Board, Metric, Subject
from socialgrid.leaderboards.pages import leaderboard_page

USERS = Board(Subject.USERS)


@pytest.fixture
def small_pages(settings) -> None:
    settings.LEADERBOARDS = {"BACKEND": "database", "PAGE_SIZE": 3}


def ranks(page) -> list[tuple[int, str]]:
    return [(row.rank, row.label.name) for row in page.rows]


def test_a_page_holds_page_size_rows_and_knows_the_page_count(small_pages, volunteer_factory):
    users = [volunteer_factory(100.0 - i, username=f"v{i}") for i in range(7)]
    page = leaderboard_page(USERS, 2, users[0])
    assert ranks(page) == [(4, "v3"), (5, "v4"), (6, "v5")]
    assert (page.size, page.page_count, page.first_rank) == (7, 3, 4)
    assert page.has_previous
    assert page.has_next
    last = leaderboard_page(USERS, 3, users[0])
    assert ranks(last) == [(7, "v6")]
    assert not last.has_next
    assert leaderboard_page(USERS, 4, users[0]).rows == []


def test_the_viewers_place_is_shown_even_off_the_page(small_pages, volunteer_factory):
    users = [volunteer_factory(100.0 - i) for i in range(7)]
    me = users[5]
    page = leaderboard_page(USERS, 1, me)
    assert not any(row.is_mine for row in page.rows)
    assert (page.mine.rank, page.mine.score, page.mine_page) == (6, 95.0, 2)
    mine = leaderboard_page(USERS, 2, me)
    assert [row.is_mine for row in mine.rows] == [False, False, True]


def test_visitors_and_volunteers_without_credit_have_no_place(volunteer_factory, user_factory):
    volunteer_factory(5.0)
    assert leaderboard_page(USERS, 1, AnonymousUser()).mine is None
    assert leaderboard_page(USERS, 1, user_factory()).mine is None


def test_anonymous_volunteers_appear_by_their_public_name(volunteer_factory):
    shy = volunteer_factory(5.0, username="shy-sam")
    Profile.objects.filter(user=shy).update(privacy=Privacy.ANONYMOUS)
    named = volunteer_factory(3.0, username="ned")
    Profile.objects.filter(user=named).update(display_name="Ned Flanders")
    page = leaderboard_page(USERS, 1, None)
    assert ranks(page) == [(1, f"Anonymous volunteer #{shy.id}"), (2, "Ned Flanders")]


def test_computers_show_their_owner_and_a_label_but_never_the_uuid(volunteer_factory):
    ana = volunteer_factory(username="ana")
    shy = volunteer_factory(username="shy")
    Profile.objects.filter(user=shy).update(privacy=Privacy.ANONYMOUS)
    laptop = Host.objects.create(
        user=ana, name="Ana's laptop", platform_class="linux", total_credit=3
    )
    hidden = Host.objects.create(user=shy, name="Shy's desktop", total_credit=2)
    stray = Host.objects.create(user=None, total_credit=1)
    page = leaderboard_page(Board(Subject.HOSTS), 1, ana)
    assert [(r.label.name, r.label.detail) for r in page.rows] == [
        ("ana", "Ana's laptop · linux"),
        (f"Anonymous volunteer #{shy.id}", f"Computer #{hidden.id}"),
        ("Unclaimed computer", f"Computer #{stray.id}"),
    ]
    for host in (laptop, hidden, stray):
        assert not any(str(host.uuid)[:8] in r.label.detail for r in page.rows)
    assert page.mine.rank == 1
    assert page.rows[0].is_mine


def test_the_viewers_best_computer_is_their_place_on_the_computer_board(volunteer_factory):
    me = volunteer_factory()
    Host.objects.create(user=volunteer_factory(), total_credit=50)
    Host.objects.create(user=me, total_credit=5)
    best = Host.objects.create(user=me, total_credit=10)
    page = leaderboard_page(Board(Subject.HOSTS), 1, me)
    assert (page.mine.rank, page.mine.score) == (2, 10.0)
    assert [r.is_mine for r in page.rows] == [False, True, False]
    assert page.rows[1].label.detail == f"Computer #{best.id}"


def test_the_team_board_shows_the_viewers_team(user_factory):
    from socialgrid.teams.models import Team, TeamMember

    me = user_factory()
    Team.objects.create(name="Alpha", slug="alpha", total_credit=30.0)
    mine = Team.objects.create(name="Beta", slug="beta", total_credit=20.0)
    TeamMember.objects.create(user=me, team=mine)
    page = leaderboard_page(Board(Subject.TEAMS), 1, me)
    assert ranks(page) == [(1, "Alpha"), (2, "Beta")]
    assert page.mine.rank == 2
    assert page.rows[1].label.url == mine.get_absolute_url()


def test_without_a_teams_app_the_team_board_says_so(db, monkeypatch):
    from socialgrid.leaderboards import database

    monkeypatch.setattr(database, "team_model", lambda: None)
    page = leaderboard_page(Board(Subject.TEAMS), 1, None)
    assert page.unavailable == pages.TEAMS_MISSING
    assert page.rows == []


def test_the_friends_board_is_me_and_my_friends(volunteer_factory, user_factory):
    from socialgrid.friends.friendships import befriend

    me = volunteer_factory(10.0, username="me")
    rich = volunteer_factory(50.0, username="rich-friend")
    new = user_factory(username="new-friend")  # no credit yet: at the bottom
    cheat = volunteer_factory(90.0, banned=True, username="banned-friend")
    volunteer_factory(70.0, username="stranger")
    for friend in (rich, new, cheat):
        befriend(me, friend)
    page = leaderboard_page(Board(Subject.FRIENDS), 1, me)
    assert ranks(page) == [(1, "rich-friend"), (2, "me"), (3, "new-friend")]
    assert page.mine.rank == 2
    assert page.size == 3


def test_the_friends_board_follows_project_and_measure(volunteer_factory, project_factory):
    from compute.models import Membership
    from socialgrid.friends.friendships import befriend

    project = project_factory()
    me, friend = volunteer_factory(100.0, rac=1.0), volunteer_factory(1.0, rac=5.0)
    befriend(me, friend)
    Membership.objects.create(user=me, project=project, total_credit=1.0)
    Membership.objects.create(user=friend, project=project, total_credit=2.0)
    rac = leaderboard_page(Board(Subject.FRIENDS, Metric.RAC), 1, me)
    assert [r.rank for r in rac.rows if r.is_mine] == [2]
    in_project = leaderboard_page(Board(Subject.FRIENDS, project_id=project.id), 1, me)
    assert [(r.score, r.is_mine) for r in in_project.rows] == [(2.0, False), (1.0, True)]


def test_the_friends_board_needs_a_signed_in_viewer_and_the_friends_app(user_factory, monkeypatch):
    page = leaderboard_page(Board(Subject.FRIENDS), 1, AnonymousUser())
    assert page.unavailable == pages.SIGN_IN_FOR_FRIENDS
    monkeypatch.setattr(pages, "friend_ids", lambda viewer: None)
    page = leaderboard_page(Board(Subject.FRIENDS), 1, user_factory())
    assert page.unavailable == pages.FRIENDS_MISSING
