"""The public profile page: numbers, projects and badges; anonymity; bans; escaping."""

from __future__ import annotations

import time

import pytest

from compute.models import Membership, Volunteer
from compute.states import MembershipState
from socialgrid.accounts.models import Privacy
from socialgrid.feed.models import Badge, BadgeKind

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def volunteer(user_factory, project_factory):
    """A named volunteer with credit in two public projects, one private one and badges."""
    user = user_factory("ada")
    profile = user.profile
    profile.display_name = "Ada L."
    profile.avatar_url = "https://img.example/ada.png"
    profile.bio = "Counting engines.\nAnd poetry."
    profile.save()
    Volunteer.objects.create(user=user, total_credit=1234.5, rac=50.0, rac_time=time.time())
    fractals = project_factory(name="Fractals")
    primes = project_factory(name="Primes")
    hidden = project_factory(name="Secret project", is_public=False)
    Membership.objects.create(user=user, project=fractals, total_credit=1000.0)
    Membership.objects.create(
        user=user, project=primes, total_credit=234.5, state=MembershipState.PAUSED
    )
    Membership.objects.create(user=user, project=hidden, total_credit=1.0)
    Badge.objects.create(user=user, kind=BadgeKind.CREDIT, level=1000)
    Badge.objects.create(user=user, kind=BadgeKind.RAC_TOP, level=5)
    return user


@pytest.mark.django_db
def test_a_named_volunteer_page_shows_name_picture_bio_numbers_projects_and_badges(
    client, volunteer
):
    response = client.get("/u/ada/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "<h1>Ada L.</h1>" in html
    assert "@ada" in html
    assert (
        '<img class="avatar" src="https://img.example/ada.png" alt="" width="96" height="96" '
        'referrerpolicy="no-referrer"' in html
    )
    assert "Counting engines.<br>And poetry." in html
    assert "1,235" in html  # total credit
    assert "Fractals" in html
    assert "Primes" in html
    assert "(paused)" in html
    assert "Secret project" not in html
    assert html.index("Fractals") < html.index("Primes")  # most credit first
    assert "1,000 credits" in html
    assert "Among the top 5% of volunteers by recent average credit." in html


@pytest.mark.django_db
def test_the_page_carries_share_tags_and_links(client, volunteer):
    html = client.get("/u/ada/").content.decode()

    assert '<meta property="og:title" content="Ada L. on socialgrid">' in html
    assert '<meta property="og:url" content="http://testserver/u/ada/">' in html
    assert '<meta property="og:image" content="https://img.example/ada.png">' in html
    assert 'name="twitter:card"' in html
    assert 'class="share-links"' in html
    assert "has earned 1,235 credit" in html


@pytest.mark.django_db
def test_recent_average_credit_is_decayed_to_now(client, volunteer):
    week = 7 * 86400
    Volunteer.objects.filter(user=volunteer).update(rac=100.0, rac_time=time.time() - week)

    html = client.get("/u/ada/").content.decode()

    assert ">50<" in html  # halved after a week without credit


@pytest.mark.django_db
def test_a_volunteer_without_credit_shows_zeros(client, user_factory):
    user_factory("fresh")
    response = client.get("/u/fresh/")

    assert response.status_code == 200
    assert "No projects joined yet." in response.content.decode()


@pytest.mark.django_db
def test_the_page_costs_a_fixed_number_of_queries(
    client, volunteer, project_factory, django_assert_max_num_queries
):
    for _ in range(10):
        Membership.objects.create(user=volunteer, project=project_factory(), total_credit=1.0)
    for level in range(10):
        Badge.objects.create(user=volunteer, kind=BadgeKind.RECRUITS, level=level + 1)

    with django_assert_max_num_queries(3):
        assert client.get("/u/ada/").status_code == 200


@pytest.mark.django_db
def test_an_unknown_username_is_404(client, db):
    assert client.get("/u/nobody/").status_code == 404


@pytest.mark.django_db
def test_the_page_is_read_only(client, volunteer):
    assert client.post("/u/ada/").status_code == 405


# ---- Anonymous volunteers --------------------------------------------------------------------


@pytest.fixture
def anonymous_volunteer(volunteer):
    volunteer.profile.privacy = Privacy.ANONYMOUS
    volunteer.profile.save()
    return volunteer


@pytest.mark.django_db
def test_an_anonymous_volunteer_shows_only_a_number_and_credit(client, anonymous_volunteer):
    url = f"/u/anonymous/{anonymous_volunteer.pk}/"
    response = client.get(url)
    html = response.content.decode()

    assert response.status_code == 200
    assert f"<h1>Anonymous volunteer #{anonymous_volunteer.pk}</h1>" in html
    assert "1,235" in html
    assert "Fractals" in html
    for private in ("ada", "Ada L.", "img.example", "Counting engines", "volunteering since"):
        assert private not in html, private
    assert f'<meta property="og:url" content="http://testserver{url}">' in html
    assert "og:image" not in html
    assert '<meta name="robots" content="noindex">' in html


@pytest.mark.django_db
def test_an_anonymous_volunteer_cannot_be_found_by_username(
    client, anonymous_volunteer, user_factory
):
    assert client.get("/u/ada/").status_code == 404
    client.force_login(user_factory("curious"))
    assert client.get("/u/ada/").status_code == 404


@pytest.mark.django_db
def test_a_named_volunteer_has_no_anonymous_page(client, volunteer):
    assert client.get(f"/u/anonymous/{volunteer.pk}/").status_code == 404


@pytest.mark.django_db
def test_an_anonymous_volunteer_sees_their_own_page_by_username_with_a_note(
    client, anonymous_volunteer
):
    client.force_login(anonymous_volunteer)
    html = client.get("/u/ada/").content.decode()

    assert f"Anonymous volunteer #{anonymous_volunteer.pk}" in html
    assert "You appear anonymously" in html
    assert f'href="/u/anonymous/{anonymous_volunteer.pk}/"' in html
    assert "Counting engines" not in html  # they see what others see


@pytest.mark.django_db
def test_profile_links_never_carry_an_anonymous_username(anonymous_volunteer, volunteer):
    assert anonymous_volunteer.profile.get_absolute_url() == f"/u/anonymous/{volunteer.pk}/"
    assert anonymous_volunteer.profile.public_avatar_url == ""
    assert anonymous_volunteer.profile.public_bio == ""


# ---- Bans and inactive accounts --------------------------------------------------------------


@pytest.mark.django_db
def test_a_banned_volunteer_page_is_404_for_others(client, volunteer, user_factory):
    Volunteer.objects.filter(user=volunteer).update(banned=True)

    assert client.get("/u/ada/").status_code == 404
    client.force_login(user_factory("other"))
    assert client.get("/u/ada/").status_code == 404


@pytest.mark.django_db
def test_a_banned_anonymous_volunteer_page_is_404_for_others(client, anonymous_volunteer):
    Volunteer.objects.filter(user=anonymous_volunteer).update(banned=True)

    assert client.get(f"/u/anonymous/{anonymous_volunteer.pk}/").status_code == 404


@pytest.mark.django_db
def test_a_banned_volunteer_still_sees_their_own_page(client, volunteer):
    Volunteer.objects.filter(user=volunteer).update(banned=True)
    client.force_login(volunteer)
    response = client.get("/u/ada/")

    assert response.status_code == 200
    assert "Your account is suspended" in response.content.decode()


@pytest.mark.django_db
def test_a_deactivated_account_has_no_page(client, volunteer):
    volunteer.is_active = False
    volunteer.save()

    assert client.get("/u/ada/").status_code == 404


# ---- Escaping and unsafe data ----------------------------------------------------------------


@pytest.mark.django_db
def test_user_text_is_escaped_everywhere_on_the_page(client, user_factory, project_factory):
    user = user_factory("mallory")
    user.profile.display_name = SCRIPT
    user.profile.bio = f'{SCRIPT}" onmouseover="x'
    user.profile.save()
    project = project_factory(name=SCRIPT)
    Membership.objects.create(user=user, project=project)

    html = client.get("/u/mallory/").content.decode()

    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '" onmouseover="x' not in html
    assert '<meta property="og:title" content="&lt;script&gt;' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "//img.example/no-scheme.png",
        "ftp://img.example/a.png",
    ],
)
def test_an_avatar_that_is_not_http_is_never_rendered(client, user_factory, url):
    user = user_factory("sneaky")
    # Straight into the database, as an admin or an old row might have it.
    type(user.profile).objects.filter(pk=user.pk).update(avatar_url=url)

    html = client.get("/u/sneaky/").content.decode()

    assert url not in html
    assert "<img" not in html
    assert 'class="avatar avatar-initial"' in html
