"""read_identity: each provider's name and picture fields, cleaned like the profile form."""

from __future__ import annotations

import pytest

from socialgrid.accounts.social import SocialIdentity, fill_profile, read_identity


@pytest.mark.parametrize(
    ("provider", "data", "expected"),
    [
        (
            "facebook",
            {"name": "Ada", "picture": {"data": {"url": "https://fb.example/a.jpg"}}},
            SocialIdentity("Ada", "https://fb.example/a.jpg"),
        ),
        (
            "facebook",
            {"name": "Ada", "picture": {"data": {"url": "https://x", "is_silhouette": True}}},
            SocialIdentity("Ada", ""),
        ),
        (
            "facebook",
            {"name": "Ada", "picture": "https://not-the-shape"},
            SocialIdentity("Ada", ""),
        ),
        (
            "google",
            {"name": "Grace", "picture": "https://g.example/p"},
            SocialIdentity("Grace", "https://g.example/p"),
        ),
        (
            "github",
            {"name": "Linus", "login": "torvalds", "avatar_url": "https://gh.example/1"},
            SocialIdentity("Linus", "https://gh.example/1"),
        ),
        (
            "github",
            {"name": None, "login": "torvalds", "avatar_url": "https://gh.example/1"},
            SocialIdentity("torvalds", "https://gh.example/1"),
        ),
        (
            "openid_connect",
            {
                "userinfo": {"name": "Marie", "picture": "https://id.example/m.png"},
                "id_token": {"name": "Old", "picture": None},
            },
            SocialIdentity("Marie", "https://id.example/m.png"),
        ),
        (
            "openid_connect",
            {"id_token": {"preferred_username": "mcurie", "picture": "https://id.example/m"}},
            SocialIdentity("mcurie", "https://id.example/m"),
        ),
        ("openid_connect", {"name": "Flat claims"}, SocialIdentity("Flat claims", "")),
    ],
)
def test_each_provider_names_things_its_own_way(provider, data, expected):
    assert read_identity(provider, data) == expected


@pytest.mark.parametrize(
    "avatar",
    [
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "http://",
        "ftp://x.example/a",
        "http://127.0.0.1/a.png",
        42,
    ],
)
def test_an_unusable_picture_is_dropped(avatar):
    assert read_identity("google", {"name": "G", "picture": avatar}).avatar_url == ""


def test_names_are_normalised_truncated_and_never_pose_as_anonymous():
    assert read_identity("google", {"name": " Ada\u202e \n Lovelace "}).name == "Ada Lovelace"
    assert len(read_identity("google", {"name": "x" * 100}).name) == 60
    assert read_identity("google", {"name": "Anonymous volunteer #3"}).name == ""
    assert read_identity("google", {"name": ["not", "text"]}).name == ""


def test_unknown_providers_and_odd_data_give_nothing():
    assert read_identity("twitter", {"name": "X"}) == SocialIdentity("", "")
    assert read_identity("google", None) == SocialIdentity("", "")


@pytest.mark.django_db
def test_filling_never_overwrites_what_the_volunteer_chose(user_factory):
    profile = user_factory().profile
    profile.display_name = "Mine"
    profile.save()

    changed = fill_profile(profile, SocialIdentity("Theirs", "https://img.example/a.png"))

    profile.refresh_from_db()
    assert changed == ["avatar_url"]
    assert profile.display_name == "Mine"
    assert profile.avatar_url == "https://img.example/a.png"
    assert fill_profile(profile, SocialIdentity("", "")) == []
