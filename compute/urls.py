from django.urls import path, re_path

from compute import membership_views, views

app_name = "compute"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/with-work.json", views.projects_with_work, name="projects_with_work"),
    path("projects/<slug:slug>/", views.project, name="project"),
    path("projects/<slug:slug>/stats.json", views.project_stats, name="project_stats"),
    path("projects/<slug:slug>/picture.png", views.project_picture, name="project_picture"),
    re_path(
        r"^projects/(?P<slug>[-\w]+)/(?P<action>join|pause|resume|finish|leave)/$",
        membership_views.change_membership,
        name="membership",
    ),
    path("kernels/<int:pk>/<str:sha256>.js", views.kernel, name="kernel"),
    path("kernels/<int:pk>/<str:sha256>.wasm", views.wasm, name="wasm"),
    path("healthz", views.healthz, name="healthz"),
]
