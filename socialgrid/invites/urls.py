from __future__ import annotations

from django.urls import path

from socialgrid.invites import views

app_name = "invites"

urlpatterns = [
    path("", views.invite, name="invite"),
    path("email/", views.send_email, name="send_email"),
    path("<slug:code>/", views.landing, name="landing"),
]
