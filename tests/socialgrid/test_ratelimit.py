from __future__ import annotations

from django.core.cache import cache
from django.http import HttpResponse
from django.test import RequestFactory

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
