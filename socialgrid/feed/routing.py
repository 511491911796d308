from __future__ import annotations

from django.urls import path

from socialgrid.feed import consumers

websocket_urlpatterns = [
    path("ws/feed/", consumers.FeedConsumer.as_asgi()),
]
