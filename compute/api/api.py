"""The REST API for project owners: the NinjaAPI, its error handling and its routers.

Every operation needs ``Authorization: Bearer <key>`` (a token from /owners/tokens/) and acts
as the token's user, on that user's own projects only; anything else is 404. Errors are
``{"detail": "..."}`` with 400 (bad input), 401 (no or bad token), 403 (not allowed to
create projects), 404, 409 (name taken, batch finished), 413 (upload too large) or 429 (too
many changes); request bodies that do not match the schema get ninja's 422 with a list of
errors.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import Http404, HttpRequest, HttpResponse

from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as SchemaError

from compute.api.auth import BearerToken, WriteThrottle
from compute.api.batch_endpoints import router as batches_router
from compute.api.docs import LocalSwagger
from compute.api.errors import Forbidden, TooLarge
from compute.api.project_endpoints import router as projects_router
from compute.api.projects import Conflict

api = NinjaAPI(
    title="socialgrid project owners' API",
    version="1",
    description=(
        "Create projects and apps, upload kernels, submit batches, follow them and download "
        "their results. Authenticate with `Authorization: Bearer <key>`; make a key at "
        "/owners/tokens/. The walkthrough is docs/project-owners.md."
    ),
    urls_namespace="api",
    auth=BearerToken(),
    throttle=WriteThrottle(),
    docs=LocalSwagger(),
)
api.add_router("/projects", projects_router)
api.add_router("/batches", batches_router)


def _error(request: HttpRequest, detail: str, status: int) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(ValidationError)
def bad_input(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(request, "; ".join(exc.messages), 400)


@api.exception_handler(SchemaError)
def schema_errors(request: HttpRequest, exc: SchemaError) -> HttpResponse:
    return api.create_response(
        request, {"detail": [_located(error) for error in exc.errors]}, status=422
    )


def _located(error: dict) -> dict:
    """ninja places a body's field under the view's parameter name (``["body", "body",
    "slug"]``); a client knows only its own JSON: ``["body", "slug"]``."""
    loc = list(error.get("loc") or [])
    if len(loc) > 2 and loc[0] == "body":
        loc.pop(1)
    return {**error, "loc": loc}


@api.exception_handler(Conflict)
def conflict(request: HttpRequest, exc: Conflict) -> HttpResponse:
    return _error(request, str(exc), 409)


@api.exception_handler(Forbidden)
def forbidden(request: HttpRequest, exc: Forbidden) -> HttpResponse:
    return _error(request, str(exc), 403)


@api.exception_handler(TooLarge)
def too_large(request: HttpRequest, exc: TooLarge) -> HttpResponse:
    return _error(request, str(exc), 413)


@api.exception_handler(RequestDataTooBig)
def form_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, "the form fields are too large: send large data as file parts", 413)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    # The same answer whether the thing does not exist or belongs to someone else.
    return _error(request, "Not found.", 404)


@api.exception_handler(AuthenticationError)
def unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(
        request, "Authentication required: send Authorization: Bearer <your API key>.", 401
    )
    response["WWW-Authenticate"] = 'Bearer realm="socialgrid"'
    return response
