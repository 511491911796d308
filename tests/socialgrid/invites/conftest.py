from __future__ import annotations

import pytest


@pytest.fixture
def signup():
    """Sign up through allauth's real view, as a visitor's browser would."""
    from django.urls import reverse

    def post(client, username: str, *, next: str | None = None):
        data = {
            "email": f"{username}@example.org",
            "username": username,
            "password1": "a long enough passphrase 42",
            "password2": "a long enough passphrase 42",
        }
        if next is not None:
            data["next"] = next
        return client.post(reverse("account_signup"), data)

    return post
