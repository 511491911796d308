from django.urls import path

from compute import consumers

websocket_urlpatterns = [
    path("ws/worker/", consumers.WorkerConsumer.as_asgi()),
    path("ws/projects/<slug:slug>/", consumers.ProjectConsumer.as_asgi()),
]
