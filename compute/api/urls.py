from __future__ import annotations

from django.urls import path

from compute.api.api import api

# The API's URL names live in the "api" namespace (api:projects, api:batch_results, ...).
urlpatterns = [path("", api.urls)]
