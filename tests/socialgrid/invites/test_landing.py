from __future__ import annotations

from html.parser import HTMLParser

from django.urls import reverse

import pytest

from compute import submission
from compute.examples import mandelbrot
from compute.models import Membership
from socialgrid.invites.codes import get_invite_code
from socialgrid.invites.referrals import COOKIE_NAME, SESSION_KEY


class Meta(HTMLParser):
    """The page's <meta> tags as {property or name: content}."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, str] = {}

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if tag == "meta" and "content" in a:
            self.tags[a.get("property") or a.get("name")] = a["content"]


def meta(response) -> dict[str, str]:
    parser = Meta()
    parser.feed(response.content.decode())
    return parser.tags


@pytest.fixture
def inviter(user_factory):
    user = user_factory(username="ada")
    user.profile.display_name = "Ada Lovelace"
    user.profile.avatar_url = "https://images.example.org/ada.png"
    user.profile.save()
    return user


@pytest.fixture
def project(project_factory, inviter):
    project = project_factory(name="Primes", description="We look for primes.")
    Membership.objects.create(user=inviter, project=project, rac=10.0)
    return project


def landing_url(user, project=None) -> str:
    return reverse("invites:landing", args=[get_invite_code(user, project).code])


def test_it_is_public_and_names_the_inviter_and_project(client, inviter, project):
    response = client.get(landing_url(inviter))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>Ada Lovelace</strong> invites you to compute" in html
    assert 'src="https://images.example.org/ada.png"' in html
    assert '<h1 id="invite-title">Primes</h1>' in html
    assert "We look for primes." in html


def test_an_unknown_code_is_404(client, db):
    assert client.get("/invite/doesnotexist/").status_code == 404


def test_an_anonymous_inviter_is_neither_named_nor_pictured(client, inviter, project):
    inviter.profile.privacy = "anonymous"
    inviter.profile.save()
    html = client.get(landing_url(inviter)).content.decode()
    assert "A socialgrid volunteer" in html
    assert "Ada" not in html
    assert "ada.png" not in html


def test_the_inviters_name_is_escaped(client, inviter, project):
    inviter.profile.display_name = '<script>alert("x")</script>'
    inviter.profile.save()
    response = client.get(landing_url(inviter))
    html = response.content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert (
        meta(response)["og:title"]
        == '<script>alert("x")</script> invites you to compute for Primes'
    )


def test_it_shows_the_projects_live_counters(client, inviter, project):
    html = client.get(landing_url(inviter)).content.decode()
    assert f'data-stats-url="/projects/{project.slug}/stats.json"' in html
    assert f'data-socket-path="/ws/projects/{project.slug}/"' in html
    assert 'data-stat="online"' in html
    assert "socialgrid/project.js" in html


def test_a_project_code_leads_to_that_project(client, inviter, project, project_factory):
    other = project_factory(name="Squares")
    response = client.get(landing_url(inviter, other))
    assert response.context["page"].project == other
    assert '<h1 id="invite-title">Squares</h1>' in response.content.decode()


def test_the_main_button_starts_computing_here_for_the_project(client, inviter, project):
    """One click: the invite page is itself a volunteer panel for the project, its main
    button Start, with what runs and how to stop it said beside it."""
    html = client.get(landing_url(inviter)).content.decode()
    assert f'data-volunteer data-ws-url="/ws/worker/" data-project="{project.slug}"' in html
    assert '<button data-action="start" class="join-button">Start computing</button>' in html
    assert "runs Primes's small computations in background workers in this tab" in html
    assert "Pause here, or close the tab, to stop." in html
    assert "socialgrid/volunteer.js" in html
    assert 'data-show="status"' in html


def test_a_new_visitor_is_offered_sign_up_while_computing(client, inviter, project):
    html = client.get(landing_url(inviter)).content.decode()
    next_q = f"?next=/projects/{project.slug}/"
    assert f'href="{reverse("account_signup")}{next_q}" data-keep-computing>' in html
    assert f'href="{reverse("account_login")}{next_q}" data-keep-computing>' in html
    assert "Credit earned by this browser" in html
    assert "the work done so far comes with you" in html


def test_a_signed_in_visitor_computes_as_themselves(client, inviter, project, user_factory):
    client.force_login(user_factory(username="grace"))
    html = client.get(landing_url(inviter)).content.decode()
    assert '<button data-action="start" class="join-button">Start computing</button>' in html
    assert "Signed in as grace" in html
    assert "Your credit" in html
    assert reverse("account_signup") + "?next" not in html


def test_open_graph_and_twitter_tags(client, inviter, project):
    url = landing_url(inviter)
    tags = meta(client.get(url))
    assert tags["og:title"] == "Ada Lovelace invites you to compute for Primes"
    assert tags["twitter:title"] == tags["og:title"]
    assert tags["og:description"] == "We look for primes."
    assert tags["og:url"] == f"http://testserver{url}"
    assert "og:image" not in tags  # not a Mandelbrot project: no picture
    assert tags["twitter:card"] == "summary"


def test_a_mandelbrot_project_shares_its_picture(client, inviter, project_factory):
    project = project_factory(
        name="Mandelbrot",
        min_quorum=1,
        target_nresults=1,
        app_kwargs={
            "name": "mandelbrot",
            "reference_path": "compute.examples.mandelbrot.run",
            "assimilator_path": "compute.examples.mandelbrot.assimilate",
        },
    )
    job = {"re_min": -2.0, "re_max": 1.0, "im_min": -1.5, "im_max": 1.5}
    job |= {"width": 16, "height": 16, "max_iter": 40}
    submission.create_batch(project, project.apps.get(), mandelbrot.split_job(job, 8), name="t")
    response = client.get(landing_url(inviter, project))
    tags = meta(response)
    picture = f"http://testserver{reverse('compute:project_picture', args=[project.slug])}"
    assert tags["og:image"] == picture
    assert tags["twitter:image"] == picture
    assert tags["twitter:card"] == "summary_large_image"
    assert "data-live-image" in response.content.decode()
    assert "It colours in once volunteers' results for it have been checked" in (
        response.content.decode()
    )


def test_viewing_remembers_the_code_in_the_session_and_a_cookie(client, inviter, project):
    code = get_invite_code(inviter).code
    response = client.get(landing_url(inviter))
    assert client.session[SESSION_KEY] == {"code": code, "project": project.pk}
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 30 * 86400


def test_the_inviter_viewing_their_own_link_is_not_remembered(client, inviter, project):
    client.force_login(inviter)
    response = client.get(landing_url(inviter))
    assert SESSION_KEY not in client.session
    assert COOKIE_NAME not in response.cookies
    assert "This is your own invite link" in response.content.decode()


def test_a_signed_in_visitor_is_not_remembered(client, inviter, project, user_factory):
    client.force_login(user_factory())
    response = client.get(landing_url(inviter))
    assert SESSION_KEY not in client.session
    assert COOKIE_NAME not in response.cookies


def test_a_banned_inviters_link_is_404(client, inviter, project):
    from compute.models import Volunteer

    url = landing_url(inviter)
    Volunteer.objects.create(user=inviter, banned=True)
    assert client.get(url).status_code == 404


def test_with_no_project_at_all_it_still_invites(client, user_factory):
    inviter = user_factory()
    response = client.get(landing_url(inviter))
    assert response.status_code == 200
    html = response.content.decode()
    assert "invites you to compute on socialgrid" in html
    assert f'href="{reverse("account_signup")}?next=/" role="button"' in html
    assert "data-live-stats" not in html
    assert "data-volunteer" not in html  # nothing to compute for


def test_the_page_costs_a_fixed_number_of_queries(
    client, inviter, project, django_assert_max_num_queries
):
    url = landing_url(inviter)
    # code, inviter's project, picture batch, three live counters, session save (4)
    with django_assert_max_num_queries(10):
        assert client.get(url).status_code == 200
