from __future__ import annotations

from django.urls import path, re_path

from compute.api import views

app_name = "owners"

urlpatterns = [
    path("", views.project_list, name="projects"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.revoke, name="revoke_token"),
    path("projects/<slug:slug>/", views.project_dashboard, name="project"),
    path("projects/<slug:slug>/live/", views.project_live, name="project_live"),
    re_path(
        r"^batches/(?P<batch_id>[0-9]+)/results\.(?P<fmt>jsonl|csv)$",
        views.batch_results,
        name="batch_results",
    ),
]
