from __future__ import annotations

import json

from django.contrib.auth.models import Permission
from django.core import mail
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client, RequestFactory

import pytest

from compute.api.tokens import issue_token
from compute.models import Project
from socialgrid.invites.models import InviteEmail
from socialgrid.ratelimit import hit, ratelimit


def test_hit_allows_up_to_the_limit_in_a_window():
    cache.clear()
    assert [hit("t:key", 3, 60) for _ in range(5)] == [True, True, True, False, False]
    assert hit("t:other", 3, 60)


def test_the_decorator_answers_429_and_skips_the_view(rf: RequestFactory):
    cache.clear()
    calls = []

    @ratelimit("test", limit=2, window=60)
    def view(request):
        calls.append(1)
        return HttpResponse("ok")

    from django.contrib.auth.models import AnonymousUser

    def post():
        request = rf.post("/x", REMOTE_ADDR="10.0.0.1")
        request.user = AnonymousUser()
        return view(request)

    assert [post().status_code for _ in range(3)] == [200, 200, 429]
    assert len(calls) == 2
    get = rf.get("/x", REMOTE_ADDR="10.0.0.1")
    get.user = AnonymousUser()
    assert view(get).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_counts(rf: RequestFactory, settings):
    from socialgrid.ratelimit import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert client_ip(request) == "10.0.0.9"
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"


@pytest.mark.django_db
def test_invitations_past_the_hourly_limit_are_refused_clearly_and_nothing_is_sent(
    client, user_factory, settings
):
    # The daily allowance is raised so that the hourly form limit (10 posts) is what refuses.
    settings.INVITES_EMAILS_PER_DAY = 100
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    sender = user_factory("inviter")
    client.force_login(sender)
    for i in range(10):
        response = client.post("/invite/email/", {"addresses": f"p{i}@example.org"})
        assert response.status_code == 302

    refused = client.post("/invite/email/", {"addresses": "late@example.org"})

    assert refused.status_code == 429
    assert "Slow down" in refused.content.decode()
    assert "late@example.org" not in {m.to[0] for m in mail.outbox}
    assert len(mail.outbox) == 10
    assert InviteEmail.objects.filter(sender=sender).count() == 10


@pytest.mark.django_db
def test_api_writes_past_the_limit_get_a_clear_error_and_change_nothing(user_factory, settings):
    settings.COMPUTE = {**settings.COMPUTE, "API_WRITES_PER_MINUTE": 2}
    cache.clear()
    owner = user_factory("apiowner")
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    key = issue_token(owner, "laptop").key
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    def create(slug: str):
        body = json.dumps({"slug": slug, "name": slug})
        return api.post("/api/projects", body, content_type="application/json")

    assert [create(s).status_code for s in ("one", "two")] == [201, 201]
    refused = create("three")

    assert refused.status_code == 429
    assert refused.json()["detail"]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert set(Project.objects.filter(owner=owner).values_list("slug", flat=True)) == {
        "one",
        "two",
    }
