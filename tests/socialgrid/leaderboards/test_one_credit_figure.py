"""One credit, one text: every page writes a figure by compute.credit_display's rule, the
same rule the volunteer panel's formatCredit follows (tests/js/volunteer.test.mjs)."""

from __future__ import annotations

import json
from pathlib import Path

from django.urls import reverse

import pytest

from compute.credit_display import format_credit
from socialgrid.teams.credit import fold_team_credit
from socialgrid.teams.membership import create_team

CASES = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "credit_formats.json").read_text()
)["cases"]


@pytest.mark.parametrize(("value", "text"), CASES)
def test_the_rule(value, text):
    assert format_credit(value) == text


def test_what_is_not_a_number_reads_zero():
    for value in (None, "12", float("nan"), float("inf"), True):
        assert format_credit(value) == "0"


def test_a_first_results_credit_reads_the_same_on_every_page(
    client, user_factory, project_factory, grant_credit
):
    """0.0163 credits: the profile, the team, the project's top contributors and the
    volunteer's panel, the leaderboards and the badges page all say 0.0163 (not 0.0 on some
    and 0.02 on others)."""
    ada = user_factory(username="ada")
    project = project_factory()
    team = create_team(ada, "Seahorse Crunchers")
    grant_credit(ada, project, 0.0163)
    fold_team_credit()  # what the periodic sweep does
    client.force_login(ada)
    pages = {
        "profile": reverse("accounts:profile", args=["ada"]),
        "team": reverse("teams:detail", args=[team.slug]),
        "project": project.get_absolute_url(),
        "leaderboard": reverse("leaderboards:index"),
        "team board": reverse("leaderboards:index") + "?board=teams",
        "badges": reverse("feed:badges"),
    }
    project_page = client.get(pages["project"]).content.decode()
    assert '<dt>Your credit</dt><dd><span data-show="credit">0.0163</span>' in project_page
    for name, url in pages.items():
        html = client.get(url).content.decode()
        assert "0.0163" in html, name
        assert ">0.0<" not in html, name
        assert ">0.02<" not in html, name
