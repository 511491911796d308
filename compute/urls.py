from django.urls import path

from compute import views

app_name = "compute"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<slug:slug>/", views.project, name="project"),
    path("projects/<slug:slug>/stats.json", views.project_stats, name="project_stats"),
    path("projects/<slug:slug>/picture.png", views.project_picture, name="project_picture"),
    path("kernels/<int:pk>/<str:sha256>.js", views.kernel, name="kernel"),
    path("kernels/<int:pk>/<str:sha256>.wasm", views.wasm, name="wasm"),
    path("healthz", views.healthz, name="healthz"),
]
