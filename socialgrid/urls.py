from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("socialgrid.accounts.urls")),
    path("invite/", include("socialgrid.invites.urls")),
    path("friends/", include("socialgrid.friends.urls")),
    path("teams/", include("socialgrid.teams.urls")),
    path("leaderboards/", include("socialgrid.leaderboards.urls")),
    path("feed/", include("socialgrid.feed.urls")),
    path("embed/", include("socialgrid.plugin.urls")),
    path("api/", include("compute.api.urls")),
    path("owners/", include("compute.api.owner_urls")),
    path("", include("compute.urls")),
]

handler429 = "socialgrid.accounts.views.too_many_requests"
