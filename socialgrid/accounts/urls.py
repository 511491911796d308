from __future__ import annotations

from django.urls import path

from socialgrid.accounts import views

app_name = "accounts"

urlpatterns = [
    path("u/anonymous/<int:user_id>/", views.anonymous_profile, name="anonymous_profile"),
    path("u/<str:username>/", views.profile, name="profile"),
    path("profile/", views.edit_profile, name="edit_profile"),
]
