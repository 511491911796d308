"""The public pages: home, project page, stats.json and the Mandelbrot picture."""

from __future__ import annotations

from html.parser import HTMLParser

from django.utils import timezone

import pytest

from compute import stats, submission
from compute.assimilation import assimilate_pending
from compute.examples import mandelbrot
from compute.models import Membership
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.validation import validate_pending

SMALL_JOB = {
    "re_min": -2.0,
    "re_max": 1.0,
    "im_min": -1.5,
    "im_max": 1.5,
    "width": 16,
    "height": 16,
    "max_iter": 40,
}


@pytest.fixture
def project(project_factory):
    return project_factory(name="Squares@Home", description="We square numbers.")


@pytest.fixture
def mandelbrot_project(project_factory):
    project = project_factory(
        min_quorum=1,
        target_nresults=1,
        app_kwargs={
            "name": "mandelbrot",
            "reference_path": "compute.examples.mandelbrot.run",
            "assimilator_path": "compute.examples.mandelbrot.assimilate",
        },
    )
    submission.create_batch(
        project, project.apps.get(), mandelbrot.split_job(SMALL_JOB, tile=8), name="tiles"
    )
    return project


def return_tiles(project, host, n):
    for a in lease_replicas(host, n):
        output = mandelbrot.run(a.input)
        assert record_result(host, a.replica_id, a.lease_token, output, 1.0)
    validate_pending()
    assimilate_pending()


class Elements(HTMLParser):
    """Start tags as (tag, attrs), and those inside <section data-volunteer> separately."""

    def __init__(self) -> None:
        super().__init__()
        self.all: list[tuple[str, dict]] = []
        self.panel: list[tuple[str, dict]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        element = (tag, dict(attrs))
        self.all.append(element)
        if tag == "section" and (self._depth or "data-volunteer" in element[1]):
            self._depth += 1
        if self._depth:
            self.panel.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._depth:
            self._depth -= 1


def elements(response) -> Elements:
    parser = Elements()
    parser.feed(response.content.decode())
    return parser


def find(items: list[tuple[str, dict]], tag: str, **attrs: str | None) -> dict:
    """The one element with these attributes (None: present with any value)."""
    wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
    matches = [
        a
        for t, a in items
        if t == tag and all(k in a and (v is None or a[k] == v) for k, v in wanted.items())
    ]
    assert len(matches) == 1, f"expected one <{tag} {wanted}>, found {len(matches)}"
    return matches[0]


def test_the_home_page_shows_public_projects_with_their_numbers(client, project, user_factory):
    submission.create_batch(project, project.apps.get(), [{"x": 1}, {"x": 2}], name="b")
    Membership.objects.create(user=user_factory(), project=project)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Squares@Home" in body
    assert "We square numbers." in body
    assert project.get_absolute_url() in body
    card = response.context["page"].cards[0]
    assert (card.volunteers, card.results_24h, card.batch.n_workunits) == (1, 0, 2)
    assert "0 of 2 done" in body


def test_the_home_page_leaves_out_private_projects(client, project_factory):
    project_factory(name="Secret project", is_public=False)
    response = client.get("/")
    assert "Secret project" not in response.content.decode()


@pytest.mark.parametrize("suffix", ["", "stats.json", "picture.png"])
def test_a_private_project_is_not_found(client, project_factory, suffix):
    hidden = project_factory(is_public=False)
    assert client.get(f"/projects/{hidden.slug}/{suffix}").status_code == 404


def test_an_unknown_project_is_not_found(client, db):
    assert client.get("/projects/nothing-here/").status_code == 404


def test_the_pages_only_answer_get(client, project):
    assert client.post("/").status_code == 405
    assert client.post(project.get_absolute_url()).status_code == 405


def test_the_project_page_shows_the_live_numbers_batches_and_contributors(
    client, project, host_factory, user_factory
):
    batch = submission.create_batch(project, project.apps.get(), [{"x": 1}] * 3, name="round 1")
    host_factory(project, last_seen=timezone.now())
    lease_replicas(host_factory(project, last_seen=timezone.now()), 1)
    star = user_factory("ada")
    Membership.objects.create(user=star, project=project, total_credit=1234.04)
    response = client.get(project.get_absolute_url())
    assert response.status_code == 200
    body = response.content.decode()
    page = elements(response)
    assert '<dd data-stat="online">1</dd>' in body
    assert '<span data-stat="batch_total">3</span>' in body
    assert "round 1" in body
    assert find(page.all, "li", data_batch_row=str(batch.id)) is not None
    assert "ada" in body
    assert "1,234" in body
    live = find(page.all, "section", data_live_stats=None)
    assert live["data-stats-url"] == f"/projects/{project.slug}/stats.json"
    assert live["data-socket-path"] == f"/ws/projects/{project.slug}/"
    assert find(page.all, "script", src="/static/socialgrid/project.js")["type"] == "module"
    # Not a Mandelbrot project: no picture.
    assert not [a for t, a in page.all if t == "img"]


def test_the_volunteer_panel_follows_the_markup_contract(client, project):
    page = elements(client.get(project.get_absolute_url()))
    section = find(page.all, "section", data_volunteer=None)
    assert section["data-ws-url"] == "/ws/worker/"
    assert section["data-project"] == project.slug
    assert section["data-signed-in"] == "false"
    panel = page.panel
    for action in ("start", "pause", "resume", "finish"):
        find(panel, "button", data_action=action)
    cores = find(panel, "input", data_setting="cores")
    assert (cores["type"], cores["min"], cores["max"], cores["value"]) == ("range", "1", "8", "4")
    cpu = find(panel, "input", data_setting="cpu")
    assert (cpu["type"], cpu["min"], cpu["max"], cpu["step"], cpu["value"]) == (
        "range",
        "10",
        "100",
        "10",
        "100",
    )
    assert find(panel, "input", data_setting="pause-hidden")["type"] == "checkbox"
    find(panel, "output", data_show="cores")
    find(panel, "output", data_show="cpu")
    assert find(panel, "p", data_show="status")["aria-live"] == "polite"
    find(panel, "span", data_show="done")
    find(panel, "span", data_show="credit")
    find(panel, "ul", data_tasks=None)
    script = find(page.all, "script", src="/static/socialgrid/volunteer.js")
    assert script["type"] == "module"


def test_the_volunteer_panel_knows_a_signed_in_volunteer(client, project, user_factory):
    user = user_factory("grace")
    client.force_login(user)
    response = client.get(project.get_absolute_url())
    page = elements(response)
    assert find(page.all, "section", data_volunteer=None)["data-signed-in"] == "true"
    # The header offers signing out as a POST form with a CSRF token.
    form = find(page.all, "form", action="/accounts/logout/")
    assert form["method"] == "post"
    body = response.content.decode()
    logout_form = body[body.index('action="/accounts/logout/"') :]
    assert 'name="csrfmiddlewaretoken"' in logout_form[: logout_form.index("</form>")]
    assert "grace" in body


def test_an_anonymous_visitor_is_offered_to_sign_in(client, project):
    body = client.get(project.get_absolute_url()).content.decode()
    assert f'href="/accounts/login/?next=/projects/{project.slug}/"' in body
    assert "credited to your account" in body


def test_user_supplied_text_is_escaped(client, project_factory):
    project = project_factory(
        name="<script>alert('name')</script>",
        description='<script>alert("description")</script> & <b>bold</b>',
    )
    submission.create_batch(
        project, project.apps.get(), [{"x": 1}], name="<script>alert('batch')</script>"
    )
    for url in ("/", project.get_absolute_url()):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body
        assert "<b>bold" not in body
        assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in body
    assert "&lt;script&gt;alert(&#x27;batch&#x27;)" in body


def test_stats_json_returns_the_project_stats(client, project, host_factory):
    batch = submission.create_batch(project, project.apps.get(), [{"x": 1}, {"x": 2}], name="b")
    lease_replicas(host_factory(project, last_seen=timezone.now()), 1)
    response = client.get(f"/projects/{project.slug}/stats.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "online": 1,
        "results_today": 0,
        "batch": {"id": batch.id, "done": 0, "total": 2},
    }
    assert response.json() == stats.project_stats(project)


def test_the_mandelbrot_project_page_shows_its_picture(client, mandelbrot_project):
    page = elements(client.get(mandelbrot_project.get_absolute_url()))
    img = find(page.all, "img", data_live_image=None)
    assert img["data-src"] == f"/projects/{mandelbrot_project.slug}/picture.png"
    assert img["src"].startswith(img["data-src"] + "?v=")
    assert img["alt"]
    # Before any tile is back the picture is the grid of tiles to come, and says so.
    html = client.get(mandelbrot_project.get_absolute_url()).content.decode()
    assert "It colours in once volunteers' results for it have been checked" in html


def test_the_picture_is_a_png_of_the_tiles_returned_so_far(
    client, mandelbrot_project, host_factory
):
    url = f"/projects/{mandelbrot_project.slug}/picture.png"
    blank = client.get(url)
    assert blank.status_code == 200
    assert blank["Content-Type"] == "image/png"
    assert blank["Cache-Control"] == "public, max-age=10"
    assert blank.content.startswith(b"\x89PNG\r\n\x1a\n")

    return_tiles(mandelbrot_project, host_factory(mandelbrot_project), 2)
    drawn = client.get(url)
    assert drawn.content.startswith(b"\x89PNG")
    assert drawn.content != blank.content


def test_the_picture_is_cached_until_another_tile_is_assimilated(
    client, mandelbrot_project, host_factory, django_assert_num_queries
):
    url = f"/projects/{mandelbrot_project.slug}/picture.png"
    host = host_factory(mandelbrot_project)
    return_tiles(mandelbrot_project, host, 1)
    first = client.get(url).content
    with django_assert_num_queries(1):
        again = client.get(url).content
    assert again == first

    return_tiles(mandelbrot_project, host, 1)
    assert client.get(url).content != first


def test_a_project_without_a_mandelbrot_app_has_no_picture(client, project):
    submission.create_batch(project, project.apps.get(), [{"x": 1}], name="b")
    assert client.get(f"/projects/{project.slug}/picture.png").status_code == 404
