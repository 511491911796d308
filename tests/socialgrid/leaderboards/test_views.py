from __future__ import annotations

from django.urls import reverse

import pytest

from compute.models import Membership
from socialgrid.accounts.models import Profile

URL = reverse("leaderboards:index")


@pytest.fixture
def board(volunteer_factory):
    """Three volunteers: 30, 20, 10 credits."""
    return [volunteer_factory(c, username=f"vol{c:.0f}") for c in (30.0, 20.0, 10.0)]


def test_the_leaderboard_is_public_and_accessible(client, board):
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<caption>" in html
    assert '<th scope="col"' in html
    assert '<th scope="row">' in html
    assert html.index("vol30") < html.index("vol20") < html.index("vol10")
    assert "Sign in</a> to see your place" in html
    assert 'aria-current="page">Volunteers</a>' in html


def test_my_row_is_highlighted_and_my_place_shown(client, board):
    client.force_login(board[1])
    html = client.get(URL).content.decode()
    assert 'class="lb-me" aria-current="true"' in html
    assert "#2</strong> of 3" in html


def test_my_place_links_to_my_page_when_i_am_not_on_this_one(client, board, settings):
    settings.LEADERBOARDS = {"BACKEND": "database", "PAGE_SIZE": 2}
    client.force_login(board[2])
    html = client.get(URL).content.decode()
    assert 'class="lb-me"' not in html
    assert "#3</strong> of 3" in html
    assert 'href="?page=2">Go to page 2</a>' in html
    html = client.get(URL, {"page": 2}).content.decode()
    assert 'class="lb-me"' in html
    assert 'rel="prev"' in html


def test_every_board_renders(client, board, project_factory):
    client.force_login(board[0])
    project = project_factory()
    for params in (
        {"metric": "rac"},
        {"period": "today"},
        {"period": "week", "project": project.slug},
        {"board": "hosts", "metric": "rac"},
        {"board": "teams"},
        {"board": "friends", "period": "week"},
    ):
        assert client.get(URL, params).status_code == 200, params


def test_options_that_do_not_apply_are_explained(client, board):
    html = client.get(URL, {"metric": "rac", "period": "today"}).content.decode()
    assert "has no “today” or “this week” view" in html
    html = client.get(URL, {"board": "hosts", "period": "week"}).content.decode()
    assert "Computers are ranked by their credit across all projects and all time" in html
    assert 'name="project"' not in html


def test_a_project_board_is_chosen_by_slug(client, board, project_factory):
    project = project_factory(name="Mandelbrot")
    Membership.objects.create(user=board[2], project=project, total_credit=7.0)
    html = client.get(URL, {"project": project.slug}).content.decode()
    assert "Volunteers by total credit in Mandelbrot" in html
    assert "vol10" in html
    assert "vol30" not in html


def test_unknown_and_private_projects_are_not_found(client, board, project_factory):
    private = project_factory(is_public=False)
    assert client.get(URL, {"project": "no-such-project"}).status_code == 404
    assert client.get(URL, {"project": private.slug}).status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"board": "robots"}, {"metric": "fame"}, {"period": "year"}, {"page": "0"}, {"page": "x"}],
)
def test_bad_options_get_a_clear_error(client, db, params):
    response = client.get(URL, params)
    assert response.status_code == 400
    assert "That leaderboard address is not valid" in response.content.decode()


def test_a_page_past_the_end_says_so(client, board):
    html = client.get(URL, {"page": 9}).content.decode()
    assert "There is no one on page 9" in html


def test_names_are_escaped(client, volunteer_factory):
    user = volunteer_factory(5.0)
    Profile.objects.filter(user=user).update(display_name="<script>alert(1)</script>")
    html = client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_friends_tab_asks_visitors_to_sign_in(client, db):
    html = client.get(URL, {"board": "friends"}).content.decode()
    assert "Sign in to see how you compare with your friends." in html


def test_only_get_is_allowed(client, db):
    assert client.post(URL).status_code == 405


def test_a_page_takes_a_fixed_number_of_queries(
    client, volunteer_factory, django_assert_max_num_queries
):
    users = [volunteer_factory(float(i + 1)) for i in range(60)]
    client.force_login(users[0])
    with django_assert_max_num_queries(12):
        assert client.get(URL).status_code == 200


def test_a_board_seen_empty_counts_the_team_that_then_earns_credit(client, user_factory, settings):
    """The "of N" is counted with the rows it describes, on the deployed settings: a team
    board viewed while empty never then says "#1 of 0"."""
    from socialgrid.teams.membership import create_team
    from socialgrid.teams.models import Team

    settings.LEADERBOARDS = {"BACKEND": "database"}
    captain = user_factory(username="captain")
    client.force_login(captain)
    html = client.get(URL, {"board": "teams"}).content.decode()
    assert "You are not in a team with credit yet." in html
    team = create_team(captain, "Seahorse Crunchers")
    Team.objects.filter(pk=team.pk).update(total_credit=12.0)
    html = client.get(URL, {"board": "teams"}).content.decode()
    assert "Seahorse Crunchers is" in html
    assert "#1</strong> of 1" in html
