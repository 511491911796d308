from __future__ import annotations

from django.urls import path

from socialgrid.leaderboards import views

app_name = "leaderboards"

urlpatterns = [
    path("", views.index, name="index"),
]
