"""Open Graph and Twitter card tags of the home and project pages, and the project page's
share links: absolute URLs, a call to action, escaped names."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from compute import submission
from compute.examples import mandelbrot
from socialgrid.plugin.sharing import CALL_TO_ACTION
from tests.socialgrid.plugin.markup import parse


def meta(page, key: str) -> str:
    attribute = "property" if key.startswith("og:") else "name"
    return page.one("meta", **{attribute: key})["content"]


@pytest.fixture
def project(project_factory):
    return project_factory(slug="squares", name="Squares@Home", description="We square numbers.")


def test_the_project_page_has_open_graph_and_twitter_tags(client, project):
    page = parse(client.get("/projects/squares/").content)
    assert meta(page, "og:title") == "Squares@Home"
    assert meta(page, "og:url") == "http://testserver/projects/squares/"
    assert meta(page, "og:type") == "website"
    assert meta(page, "og:site_name") == "socialgrid"
    description = meta(page, "og:description")
    assert description == f"We square numbers. {CALL_TO_ACTION}"
    assert meta(page, "twitter:card") == "summary"
    assert meta(page, "twitter:title") == "Squares@Home"
    assert meta(page, "twitter:description") == description
    assert meta(page, "description") == description
    # Not a Mandelbrot project: no picture to show.
    assert not page.all("meta", property="og:image")
    assert not page.all("meta", name="twitter:image")


def test_a_long_description_is_cut_so_the_call_to_action_stays(client, project_factory):
    project_factory(slug="long", description="Very long words here. " * 40)
    page = parse(client.get("/projects/long/").content)
    description = meta(page, "description")
    assert len(description) <= 160
    assert description.endswith(CALL_TO_ACTION)
    assert meta(page, "og:description").endswith(CALL_TO_ACTION)


def test_a_project_without_a_description_still_has_one(client, project_factory):
    project_factory(slug="bare", name="Bare", description="")
    description = meta(parse(client.get("/projects/bare/").content), "og:description")
    assert description.startswith("Bare, a volunteer computing project.")
    assert description.endswith(CALL_TO_ACTION)


def test_a_mandelbrot_project_shares_its_picture(client, project_factory):
    project = project_factory(
        slug="fractal",
        min_quorum=1,
        target_nresults=1,
        app_kwargs={
            "name": "mandelbrot",
            "reference_path": "compute.examples.mandelbrot.run",
            "assimilator_path": "compute.examples.mandelbrot.assimilate",
        },
    )
    job = {
        "re_min": -2.0, "re_max": 1.0, "im_min": -1.5, "im_max": 1.5,
        "width": 16, "height": 16, "max_iter": 40,
    }  # fmt: skip
    tiles = mandelbrot.split_job(job, tile=8)
    submission.create_batch(project, project.apps.get(), tiles, name="tiles")
    page = parse(client.get("/projects/fractal/").content)
    image = "http://testserver/projects/fractal/picture.png"
    assert meta(page, "og:image") == image
    assert meta(page, "twitter:image") == image
    assert meta(page, "twitter:card") == "summary_large_image"
    assert client.get(urlsplit(image).path).status_code == 200


def test_the_project_page_has_share_links_to_itself(client, project):
    page = parse(client.get("/projects/squares/").content)
    links = page.one("nav", class_="share-links").all("a")
    facebook = next(a for a in links if a["href"].startswith("https://www.facebook.com/"))
    assert parse_qs(urlsplit(facebook["href"]).query)["u"] == [
        "http://testserver/projects/squares/"
    ]
    tweet = next(a for a in links if a["href"].startswith("https://twitter.com/"))
    query = parse_qs(urlsplit(tweet["href"]).query)
    assert query == {"url": ["http://testserver/projects/squares/"], "text": ["Squares@Home"]}


def test_the_canonical_url_leaves_out_the_query_string(client, project):
    page = parse(client.get("/projects/squares/?utm_source=x").content)
    assert meta(page, "og:url") == "http://testserver/projects/squares/"


def test_the_home_page_has_open_graph_and_twitter_tags(client, db):
    page = parse(client.get("/").content)
    assert meta(page, "og:url") == "http://testserver/"
    assert meta(page, "og:title") == "socialgrid · volunteer computing in your browser"
    assert "press Start" in meta(page, "og:description")
    assert meta(page, "twitter:card") == "summary"
    assert len(page.all("meta", name="description")) == 1


def test_the_project_page_has_one_description_and_one_title_tag(client, project):
    page = parse(client.get("/projects/squares/").content)
    assert len(page.all("meta", name="description")) == 1
    assert len(page.all("meta", property="og:title")) == 1


def test_names_and_descriptions_are_escaped_in_the_tags(client, project_factory):
    name = "<script>alert('x')</script> \"quoted\""
    project_factory(slug="evil", name=name, description='<script>alert("d")</script>')
    response = client.get("/projects/evil/")
    body = response.content.decode()
    assert "<script>alert" not in body
    assert 'content="&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &quot;quoted&quot;"' in body
    page = parse(response.content)
    assert meta(page, "og:title") == name
    assert meta(page, "twitter:title") == name
    assert meta(page, "og:description").startswith('<script>alert("d")</script>')
