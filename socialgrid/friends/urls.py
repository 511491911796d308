from __future__ import annotations

from django.urls import path

from socialgrid.friends import views

app_name = "friends"

urlpatterns = [
    path("", views.index, name="index"),
    path("request/<str:username>/", views.send_request, name="send_request"),
    # The same by id, for pages that must not show the username (anonymous profiles).
    path("request/id/<int:user_id>/", views.send_request, name="send_request_by_id"),
    path("requests/<int:pk>/accept/", views.accept, name="accept"),
    path("requests/<int:pk>/decline/", views.decline, name="decline"),
    path("requests/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("remove/<int:user_id>/", views.remove, name="remove"),
]
