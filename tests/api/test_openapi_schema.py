"""The OpenAPI schema holds: schemathesis generates requests for every operation from it
(valid and invalid ones) and checks the answers against it, over the WSGI application, with
an owner's key. No request may get a server error or an answer the schema does not
describe."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from compute.api.tokens import issue_token
from socialgrid.wsgi import application


@schemathesis.serializer("application/x-ndjson")
def _json_lines(ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


@pytest.fixture
def _keep_the_test_connection():
    """Requests go through the real WSGI handler, whose end-of-request hook would close the
    test's database connection mid-transaction (on PostgreSQL); Django's test client unhooks
    it the same way."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def authorization(owner, project_factory, _keep_the_test_connection) -> dict[str, str]:
    project_factory(owner=owner, slug="mine")
    return {"Authorization": f"Bearer {issue_token(owner, 'schemathesis').key}"}


# A schema-valid request may still break a rule no JSON Schema can state (a quorum larger
# than the replicas, an empty sweep): those get 400 with a message.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "413", "429"]
            }
        }
    }
)
# Loaded at collection: the schema endpoint needs neither a key nor the database. (The lazy
# from_fixture loader does not run under pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application, config=CONFIG)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_its_schema_says(case, authorization):
    cache.clear()  # the write limit is not what is tested here
    case.call_and_validate(headers=authorization)


def test_the_schema_and_the_reference_page_are_served(client):
    spec = client.get("/api/openapi.json").json()
    page = client.get("/api/docs")

    assert spec["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    assert "/api/projects/{slug}/apps/{app}/batches" in spec["paths"]
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn" not in html
