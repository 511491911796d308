from __future__ import annotations

from django.urls import path

from socialgrid.feed import views

app_name = "feed"

urlpatterns = [
    path("", views.feed, name="index"),
    path("badges/", views.badges, name="badges"),
]
