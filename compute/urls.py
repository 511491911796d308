from django.urls import path

from compute import views

app_name = "compute"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<slug:slug>/", views.project, name="project"),
    path("kernels/<int:pk>/<str:sha256>.js", views.kernel, name="kernel"),
    path("kernels/<int:pk>/<str:sha256>.wasm", views.wasm, name="wasm"),
    path("healthz", views.healthz, name="healthz"),
]
