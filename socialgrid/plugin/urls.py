from __future__ import annotations

from django.urls import path

from socialgrid.plugin import views

app_name = "plugin"

urlpatterns = [
    # Before the slug pattern: a project slugged "facebook" cannot be embedded by URL.
    path("facebook/", views.facebook_canvas, name="facebook"),
    path("<slug:slug>/", views.embed, name="embed"),
]
