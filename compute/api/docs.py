"""The interactive API documentation (Swagger UI), served from this site: ninja's own page
loads Swagger UI from a CDN unless ninja is an installed app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ninja.openapi.docs import Swagger


class LocalSwagger(Swagger):
    template = "owners/api_docs.html"

    def render_page(self, request: HttpRequest, api: Any, **kwargs: Any) -> HttpResponse:
        settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        return render(request, self.template, {"api": api, "swagger_settings": settings})
