from __future__ import annotations

from django.urls import path

from socialgrid.teams import challenge_views, views

app_name = "teams"

# Fixed paths come before <slug>/; team slugs never take their names (RESERVED_SLUGS).
urlpatterns = [
    path("", views.team_list, name="list"),
    path("new/", views.team_new, name="new"),
    path("challenges/", challenge_views.challenge_list, name="challenges"),
    path("challenges/new/", challenge_views.challenge_new, name="challenge_new"),
    path("challenges/<slug:slug>/", challenge_views.challenge_detail, name="challenge"),
    path("<slug:slug>/", views.team_detail, name="detail"),
    path("<slug:slug>/edit/", views.team_edit, name="edit"),
    path("<slug:slug>/join/", views.team_join, name="join"),
    path("<slug:slug>/quit/", views.team_quit, name="quit"),
    path("<slug:slug>/founder/", views.team_transfer, name="transfer"),
    path("<slug:slug>/remove/", views.team_remove, name="remove"),
]
