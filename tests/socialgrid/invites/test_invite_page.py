from __future__ import annotations

from pathlib import Path

from django.urls import reverse

from socialgrid.invites.codes import get_invite_code
from socialgrid.invites.models import Referral

URL = "/invite/"


def test_the_url_is_invites_invite():
    assert reverse("invites:invite") == URL


def test_it_requires_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_shows_the_users_own_link_with_copy_share_and_email(client, user_factory):
    me = user_factory()
    client.force_login(me)
    html = client.get(URL).content.decode()
    link = f"http://testserver/invite/{get_invite_code(me).code}/"
    assert f'value="{link}"' in html
    assert 'data-copy="invite-link"' in html
    assert "socialgrid/invites.js" in html
    assert 'class="share-links"' in html
    assert f'action="{reverse("invites:send_email")}"' in html
    assert "csrfmiddlewaretoken" in html


def test_nobody_reads_another_users_invite_page(client, user_factory):
    alice, bob = user_factory(), user_factory()
    alice_code = get_invite_code(alice).code
    client.force_login(bob)
    for url in (URL, f"{URL}?user={alice.pk}", f"{URL}?username={alice.username}"):
        html = client.get(url).content.decode()
        assert alice_code not in html
        assert get_invite_code(bob).code in html


def test_a_project_link_is_shown_for_a_chosen_project(client, user_factory, project_factory):
    me, project = user_factory(), project_factory(name="Primes")
    client.force_login(me)
    html = client.get(f"{URL}?project={project.slug}").content.decode()
    assert get_invite_code(me, project).code in html
    assert "Your link for Primes" in html
    assert f'<option value="{project.slug}" selected>' in html


def test_an_unknown_or_private_project_is_404(client, user_factory, project_factory):
    client.force_login(user_factory())
    private = project_factory(is_public=False)
    assert client.get(f"{URL}?project=nope").status_code == 404
    assert client.get(f"{URL}?project={private.slug}").status_code == 404


def test_it_lists_recruits_by_public_name_escaped(client, user_factory):
    me, recruit, anonymous = user_factory(), user_factory(), user_factory(username="zq_secret_name")
    recruit.profile.display_name = "<script>x()</script>"
    recruit.profile.save()
    anonymous.profile.privacy = "anonymous"
    anonymous.profile.save()
    Referral.objects.create(recruit=recruit, inviter=me)
    Referral.objects.create(recruit=anonymous, inviter=me)
    client.force_login(me)
    response = client.get(URL)
    html = response.content.decode()
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<script>x()</script>" not in html
    assert f"Anonymous volunteer #{anonymous.pk}" in html
    assert "zq_secret_name" not in html
    page = response.context["page"]
    assert (page.n_joined, page.n_counted, page.next_badge) == (2, 0, 1)


def test_the_share_title_names_the_project(client, user_factory, project_factory):
    me, project = user_factory(), project_factory(name="Primes & Co")
    client.force_login(me)
    page = client.get(f"{URL}?project={project.slug}").context["page"]
    assert page.share_title == "Compute for Primes & Co with me on socialgrid"
    html = client.get(f"{URL}?project={project.slug}").content.decode()
    assert "text=Compute%20for%20Primes%20%26%20Co" in html


def test_the_page_costs_the_same_queries_for_many_recruits(
    client, user_factory, project_factory, django_assert_max_num_queries
):
    me, project = user_factory(), project_factory()
    for _ in range(10):
        Referral.objects.create(recruit=user_factory(), inviter=me, project=project)
    client.force_login(me)
    client.get(URL)  # makes the code
    # session, user, profile, code, totals, recruits, landing project (2), projects, e-mails
    with django_assert_max_num_queries(10):
        assert client.get(URL).status_code == 200


def test_the_copy_script_is_a_static_file_of_its_own():
    from django.contrib.staticfiles import finders

    path = finders.find("socialgrid/invites.js")
    assert path is not None
    assert "navigator.clipboard.writeText" in Path(path).read_text()
