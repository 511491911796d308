from django.urls import path

from compute import consumers
from compute.dispatch.socket import WorkerConsumer

websocket_urlpatterns = [
    path("ws/worker/", WorkerConsumer.as_asgi()),
    path("ws/projects/<slug:slug>/", consumers.ProjectConsumer.as_asgi()),
]
