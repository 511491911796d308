"""The "Put this project on your site" section of the project page, and embed.js."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialgrid.plugin.snippets import script_url
from tests.socialgrid.plugin.markup import parse

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(project_factory):
    return project_factory(slug="squares", name="Squares@Home")


def snippets_section(response):
    page = parse(response.content)
    section = page.one("section", data_snippets=None)
    heading = section.one("h2")
    assert heading.text == "Put this project on your site"
    assert section["aria-labelledby"] == heading["id"]
    return page, section


def test_the_project_page_offers_an_iframe_and_a_script(client, project):
    _, section = snippets_section(client.get("/projects/squares/"))
    iframe = section.one("textarea", id="snippet-iframe")
    script = section.one("textarea", id="snippet-script")
    assert iframe.has("readonly")
    assert section.one("label", for_="snippet-iframe")
    assert section.one("label", for_="snippet-script")
    # The textareas hold the code as text; parsed, it is one element each.
    frame = parse(iframe.text).one("iframe")
    assert frame["src"] == "http://testserver/embed/squares/"
    assert frame["title"] == "Squares@Home on socialgrid"
    assert frame["sandbox"] == (
        "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    )
    assert frame["height"]
    assert frame["loading"] == "lazy"
    tag = parse(script.text).one("script")
    assert tag["src"] == "http://testserver/static/socialgrid/plugin/embed.js"
    assert tag["data-project"] == "squares"
    assert tag["data-title"] == "Squares@Home on socialgrid"
    assert tag.has("async")
    assert section.one("a", href="http://testserver/embed/squares/")


def test_each_snippet_has_a_copy_button(client, project):
    page, section = snippets_section(client.get("/projects/squares/"))
    for target in ("snippet-iframe", "snippet-script"):
        button = section.one("button", data_copy=target)
        assert button["type"] == "button"
    assert page.one("script", src="/static/socialgrid/plugin/snippets.js")["type"] == "module"
    assert section.one("span", data_copy_status=None)["role"] == "status"


def test_the_snippets_use_the_requests_host_and_scheme(client, project):
    response = client.get("/projects/squares/", secure=True, HTTP_HOST="localhost")
    _, section = snippets_section(response)
    frame = parse(section.one("textarea", id="snippet-iframe").text).one("iframe")
    assert frame["src"] == "https://localhost/embed/squares/"


def test_a_hostile_project_name_is_escaped_in_the_snippets(client, project_factory):
    name = "<script>alert('x')</script> \"quoted\" & more"
    project_factory(slug="evil", name=name)
    response = client.get("/projects/evil/")
    body = response.content.decode()
    assert "<script>alert" not in body
    _, section = snippets_section(response)
    code = section.one("textarea", id="snippet-iframe").text
    # Shown as text, the snippet is valid HTML that carries the name inside its attribute.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &quot;quoted&quot; &amp; more" in code
    assert parse(code).one("iframe")["title"] == f"{name} on socialgrid"
    script = section.one("textarea", id="snippet-script").text
    assert parse(script).one("script")["data-title"] == f"{name} on socialgrid"


def test_the_project_page_keeps_its_volunteer_panel(client, project):
    page = parse(client.get("/projects/squares/").content)
    panel = page.one("section", data_volunteer=None)
    assert panel["data-project"] == "squares"
    assert panel["data-ws-url"] == "/ws/worker/"
    assert len(page.all("script", src="/static/socialgrid/volunteer.js")) == 1


def test_embed_js_builds_the_frame_from_its_own_origin():
    source = (ROOT / "static/socialgrid/plugin/embed.js").read_text()
    assert "new URL(script.src, document.baseURI).origin" in source
    assert '"/embed/" + encodeURIComponent(slug) + "/"' in source
    assert "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox" in source
    # No third-party code: it loads nothing, only inserts the frame.
    for forbidden in ('createElement("script")', "fetch(", "XMLHttpRequest", "document.cookie"):
        assert forbidden not in source


def test_embed_js_is_served_as_a_static_file(client, db):
    response = client.get("/static/socialgrid/plugin/embed.js")
    assert response.status_code == 200
    assert b"socialgrid:height" in b"".join(response.streaming_content)


def test_the_script_snippet_names_embed_js_without_a_content_hash(settings):
    # As in production, where static() would give embed.<hash>.js.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    assert script_url() == "/static/socialgrid/plugin/embed.js"
