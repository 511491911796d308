"""The plugin page /embed/<slug>/: what it shows, and that nothing computes before consent."""

from __future__ import annotations

from django.utils import timezone

import pytest

from compute import submission
from compute.scheduler import lease_replicas
from tests.socialgrid.plugin.markup import parse


@pytest.fixture
def project(project_factory):
    return project_factory(slug="squares", name="Squares@Home", description="We square numbers.")


def test_the_plugin_page_shows_the_project_and_its_live_numbers(client, project, host_factory):
    submission.create_batch(project, project.apps.get(), [{"x": 1}, {"x": 2}], name="b")
    lease_replicas(host_factory(project, last_seen=timezone.now()), 1)
    response = client.get("/embed/squares/")
    assert response.status_code == 200
    page = parse(response.content)
    assert page.one("h1").text.strip().startswith("Squares@Home")
    assert page.one("dd", data_stat="online").text == "1"
    assert page.one("dd", data_stat="results_today").text == "0"
    live = page.one("section", data_live_stats=None)
    assert live["data-stats-url"] == "/projects/squares/stats.json"
    assert live["data-socket-path"] == "/ws/projects/squares/"
    assert page.one("script", src="/static/socialgrid/project.js")["type"] == "module"


def test_the_plugin_page_has_its_own_minimal_chrome(client, project):
    page = parse(client.get("/embed/squares/").content)
    # No site header, navigation, sign-out form or footer of base.html.
    assert not page.all("nav")
    assert not page.all("form")
    assert not page.all("header", class_="site-header")
    assert page.one("main")["class"] == "plugin"
    assert page.one("meta", name="robots")["content"] == "noindex"
    assert page.one("link", href="/static/socialgrid/plugin/plugin.css")["rel"] == "stylesheet"


def test_links_leave_the_frame_for_a_new_tab(client, project):
    page = parse(client.get("/embed/squares/").content)
    links = page.all("a")
    assert links
    for link in links:
        assert link["target"] == "_blank", link.attrs
        assert "noopener" in link["rel"]


def test_a_private_project_has_no_plugin_page(client, project_factory):
    hidden = project_factory(slug="hidden", is_public=False)
    assert client.get(f"/embed/{hidden.slug}/").status_code == 404


def test_an_unknown_project_has_no_plugin_page(client, db):
    assert client.get("/embed/nothing-here/").status_code == 404


def test_the_plugin_page_only_answers_get(client, project):
    assert client.post("/embed/squares/").status_code == 405


def test_the_volunteer_panel_is_hidden_and_inert_until_consent(client, project):
    page = parse(client.get("/embed/squares/").content)
    panel = page.one("section", data_volunteer=None)
    wrapper = page.one("div", data_plugin_panel=None)
    assert wrapper in panel.ancestors()
    assert wrapper.has("hidden")
    assert wrapper.has("inert")
    # The worker code is not on the page: plugin.js imports it after "Yes, compute".
    assert not page.all("script", src="/static/socialgrid/volunteer.js")
    assert wrapper["data-volunteer-script"] == "/static/socialgrid/volunteer.js"
    assert page.one("script", src="/static/socialgrid/plugin/plugin.js")["type"] == "module"


def test_the_volunteer_panel_keeps_the_markup_contract(client, project):
    page = parse(client.get("/embed/squares/").content)
    panel = page.one("section", data_volunteer=None)
    assert panel["data-ws-url"] == "/ws/worker/"
    assert panel["data-project"] == "squares"
    assert panel["data-signed-in"] == "false"
    for action in ("start", "pause", "resume", "finish"):
        panel.one("button", data_action=action)
    for setting in ("cores", "cpu", "pause-hidden"):
        panel.one("input", data_setting=setting)
    for name in ("cores", "cpu"):
        panel.one("output", data_show=name)
    assert panel.one("p", data_show="status")["aria-live"] == "polite"
    panel.one("span", data_show="done")
    panel.one("span", data_show="credit")
    panel.one("ul", data_tasks=None)


def test_start_asks_a_clear_question_with_yes_and_no(client, project):
    page = parse(client.get("/embed/squares/").content)
    consent = page.one("section", data_plugin_consent=None)
    start = consent.one("button", data_plugin_start=None)
    assert start.text == "Start"
    assert start["type"] == "button"
    ask = consent.one("div", data_consent_step="ask")
    assert ask.has("hidden")
    assert start["aria-controls"] == ask["id"]
    yes = ask.one("button", data_consent="yes")
    question = ask.one("p", id=yes["aria-describedby"]).text
    assert "Compute for Squares@Home in this browser tab?" in question
    assert "until you pause or leave this page" in question
    assert ask.one("button", data_consent="yes").text == "Yes, compute"
    assert ask.one("button", data_consent="no").text == "No thanks"
    # The consent controls are outside the inert panel.
    wrapper = page.one("div", data_plugin_panel=None)
    assert wrapper not in consent.ancestors()


def test_an_anonymous_visitor_is_told_the_work_is_anonymous(client, project):
    body = client.get("/embed/squares/").content.decode()
    assert "You compute anonymously" in body
    assert 'href="/accounts/login/?next=/projects/squares/"' in body


def test_a_signed_in_visitor_is_told_who_gets_the_credit(client, project, user_factory):
    client.force_login(user_factory("grace"))
    response = client.get("/embed/squares/")
    page = parse(response.content)
    assert page.one("section", data_volunteer=None)["data-signed-in"] == "true"
    identity = page.one("section", class_="plugin-identity").text
    assert "Signed in as grace" in " ".join(identity.split())


def test_the_project_name_is_escaped(client, project_factory):
    project_factory(slug="evil", name="<script>alert('x')</script> \"quoted\"")
    body = client.get("/embed/evil/").content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &quot;quoted&quot;" in body


def test_the_plugin_page_costs_a_handful_of_queries(client, project, django_assert_max_num_queries):
    submission.create_batch(project, project.apps.get(), [{"x": 1}] * 20, name="b")
    with django_assert_max_num_queries(5):
        assert client.get("/embed/squares/").status_code == 200
