"""/profile/: a signed-in volunteer edits their own profile, and only their own."""

from __future__ import annotations

import pytest

from socialgrid.accounts.models import Privacy, Profile

SCRIPT = "<script>alert(1)</script>"

VALID = {
    "display_name": "Ada Lovelace",
    "avatar_url": "https://img.example/ada.png",
    "bio": "Counting engines.",
    "privacy": "named",
}


@pytest.fixture
def ada(client, user_factory):
    user = user_factory("ada")
    client.force_login(user)
    return user


def profile_of(user) -> Profile:
    return Profile.objects.get(user=user)


@pytest.mark.django_db
def test_signing_in_is_required(client):
    response = client.get("/profile/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/profile/"
    assert client.post("/profile/", VALID).status_code == 302
    assert not Profile.objects.filter(display_name="Ada Lovelace").exists()


@pytest.mark.django_db
def test_the_form_shows_the_current_values_and_account_links(client, ada):
    ada.profile.display_name = "Current name"
    ada.profile.save()
    html = client.get("/profile/").content.decode()

    assert 'value="Current name"' in html
    assert '<label for="id_display_name">Display name</label>' in html
    assert "<legend>How others see you</legend>" in html
    assert 'href="/accounts/email/"' in html
    assert 'href="/accounts/3rdparty/"' in html
    assert 'href="/u/ada/"' in html


@pytest.mark.django_db
def test_saving_changes_the_profile_and_redirects(client, ada):
    response = client.post("/profile/", VALID)

    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    profile = profile_of(ada)
    assert profile.display_name == "Ada Lovelace"
    assert profile.avatar_url == "https://img.example/ada.png"
    assert profile.bio == "Counting engines."
    assert "Your profile is saved." in client.get("/profile/").content.decode()


@pytest.mark.django_db
def test_choosing_anonymity_moves_the_public_page(client, ada):
    client.post("/profile/", {**VALID, "privacy": "anonymous"})

    assert profile_of(ada).privacy == Privacy.ANONYMOUS
    html = client.get("/profile/").content.decode()
    assert f'href="/u/anonymous/{ada.pk}/"' in html


@pytest.mark.django_db
def test_text_is_normalised(client, ada):
    client.post(
        "/profile/",
        {
            **VALID,
            "display_name": "  Ada \u202e  Lovelace\t",
            "bio": "line one\r\n\r\n\r\n\r\nline two\x07",
        },
    )

    profile = profile_of(ada)
    assert profile.display_name == "Ada Lovelace"
    assert profile.bio == "line one\n\nline two"


@pytest.mark.django_db
def test_empty_fields_are_allowed(client, ada):
    client.post("/profile/", {"display_name": "", "avatar_url": "", "bio": "", "privacy": "named"})

    profile = profile_of(ada)
    assert (profile.display_name, profile.avatar_url, profile.bio) == ("", "", "")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("avatar_url", "javascript:alert(1)", "Use an address starting with https://"),
        ("avatar_url", "data:image/png;base64,AAAA", "Use an address starting with https://"),
        ("avatar_url", "ftp://img.example/a.png", "Use an address starting with https://"),
        ("avatar_url", "img.example/a.png", "Use an address starting with https://"),
        ("avatar_url", "https://user:pw@img.example/a.png", "must not contain a user name"),
        ("avatar_url", "https://" + "a" * 500 + ".example/", "at most 500 characters"),
        ("avatar_url", "https://exa mple/x.png", "Enter a valid web address."),
        ("avatar_url", "http://localhost/a.png", "Use the address of a public web site."),
        ("avatar_url", "http://192.168.1.1/admin", "Use the address of a public web site."),
        ("avatar_url", "https://router.lan/a.png", "Use the address of a public web site."),
        ("display_name", "x" * 61, "at most 60 characters"),
        ("display_name", "Anonymous volunteer #1", "are reserved"),
        ("display_name", "anonymous VOLUNTEER", "are reserved"),
        ("bio", "b" * 301, "at most 300 characters"),
        ("privacy", "everyone", "Select a valid choice."),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(
    client, ada, field, value, error
):
    response = client.post("/profile/", {**VALID, field: value})

    assert response.status_code == 200
    html = response.content.decode()
    assert error in html
    assert f'id="id_{field}_error"' in html
    profile = profile_of(ada)
    assert (profile.display_name, profile.avatar_url, profile.bio) == ("", "", "")


@pytest.mark.django_db
def test_http_avatars_are_accepted(client, ada):
    client.post("/profile/", {**VALID, "avatar_url": "http://img.example/a.png"})

    assert profile_of(ada).avatar_url == "http://img.example/a.png"


@pytest.mark.django_db
def test_script_in_every_field_is_stored_as_text_and_escaped(client, ada):
    client.post(
        "/profile/",
        {**VALID, "display_name": SCRIPT, "bio": SCRIPT, "avatar_url": 'https://x.example/"><'},
    )

    assert profile_of(ada).display_name == SCRIPT
    for page in ("/profile/", "/u/ada/"):
        html = client.get(page).content.decode()
        assert SCRIPT not in html, page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, page
    assert 'src="https://x.example/&quot;&gt;&lt;"' in client.get("/u/ada/").content.decode()


@pytest.mark.django_db
def test_the_form_only_ever_edits_your_own_profile(client, ada, user_factory):
    victim = user_factory("victim")
    victim.profile.display_name = "Victim"
    victim.profile.save()

    client.post("/profile/", {**VALID, "user": victim.pk, "display_name": "Hijacked"})

    assert profile_of(victim).display_name == "Victim"
    assert profile_of(ada).display_name == "Hijacked"


@pytest.mark.django_db
def test_posting_without_a_csrf_token_is_refused(ada):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(ada)

    assert csrf_client.post("/profile/", VALID).status_code == 403
    assert profile_of(ada).display_name == ""


@pytest.mark.django_db
def test_saving_is_rate_limited(client, ada):
    for _ in range(30):
        assert client.post("/profile/", VALID).status_code == 302

    response = client.post("/profile/", {**VALID, "display_name": "One too many"})

    assert response.status_code == 429
    assert profile_of(ada).display_name == "Ada Lovelace"
