"""One rule per setting on every way in: the admin's forms and the API (creating and
updating) refuse and accept exactly the same values at each bound of a project's and an
app's settings, and the owners' guide states those bounds."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse

import pytest

from compute.api.bounds import limits
from compute.api.projects import APP_FIELDS, PROJECT_FIELDS
from compute.models import App, Project
from tests.api.conftest import body

# The bounds the owners' guide promises.
PROJECT_BOUNDS = {
    "min_quorum": (1, 20),
    "target_nresults": (1, 20),
    "max_error_results": (1, 100),
    "max_total_results": (1, 100),
    "max_success_results": (1, 100),
    "delay_bound": (60, 30 * 86400),
    "max_deadline_extension": (0, 30 * 86400),
    "daily_quota_per_core": (1, 1_000_000),
}
APP_BOUNDS = {
    "tolerance": (0, 1_000_000),
    "spot_check_rate": (0, 1),
    "min_memory_mb": (0, 1_000_000),
    "min_cores": (1, 1024),
}
# A policy every bound below can be tried against; a quorum of 20 needs 20 replicas.
PROJECT_BASE = {
    "min_quorum": 1,
    "target_nresults": 1,
    "max_error_results": 3,
    "max_total_results": 100,
    "max_success_results": 100,
    "delay_bound": 3600,
    "max_deadline_extension": 3600,
    "daily_quota_per_core": 2000,
}
COMPANIONS = {("min_quorum", 20): {"target_nresults": 20}}


def _cases(bounds: dict[str, tuple[float, float]]) -> list:
    cases = []
    for field, (low, high) in bounds.items():
        for value, ok in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
            cases.append(pytest.param(field, value, ok, id=f"{field}={value}"))
    return cases


def _project_data(field: str, value: float) -> dict:
    return {**PROJECT_BASE, **COMPANIONS.get((field, value), {}), field: value}


def _admin_url(model: type, view: str, *args: object) -> str:
    return reverse(f"admin:compute_{model._meta.model_name}_{view}", args=args)


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "ok"), _cases(PROJECT_BOUNDS))
def test_the_admin_and_the_api_agree_on_a_projects_bounds(
    admin_client, admin_user, api, field, value, ok
):
    data = _project_data(field, value)
    admin_form = {
        "name": "By the admin",
        "slug": "by-admin",
        "owner": admin_user.pk,
        "credit_policy": "min",
        "max_credit_per_replica": 100,
        **data,
    }

    by_admin = admin_client.post(_admin_url(Project, "add"), admin_form)
    by_api = api.post_json("/api/projects", {"slug": "by-api", "name": "By the API", **data})

    assert (by_admin.status_code == 302) is ok, by_admin.context and by_admin.context["errors"]
    assert (by_api.status_code == 201) is ok, by_api.content
    assert Project.objects.filter(slug="by-admin").exists() is ok
    assert Project.objects.filter(slug="by-api").exists() is ok
    if ok:
        assert getattr(Project.objects.get(slug="by-admin"), field) == value
        assert getattr(Project.objects.get(slug="by-api"), field) == value
        assert body(by_api)[field] == value
    else:
        assert by_api.status_code in (400, 422)


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "ok"), _cases(PROJECT_BOUNDS))
def test_an_update_through_the_api_takes_the_same_bounds(api, owner, field, value, ok):
    project = Project.objects.create(owner=owner, slug="mine", name="Mine", **PROJECT_BASE)
    change = {**COMPANIONS.get((field, value), {}), field: value}

    response = api.client.patch(
        "/api/projects/mine", change, content_type="application/json", **api.headers
    )

    project.refresh_from_db()
    assert (response.status_code == 200) is ok, response.content
    assert (getattr(project, field) == value) is ok
    if ok:
        assert body(api.get("/api/projects/mine"))[field] == value
    else:
        assert response.status_code in (400, 422)
        assert {k: getattr(project, k) for k in PROJECT_BASE} == PROJECT_BASE


API_APP = {
    "name": "search",
    "title": "Key search",
    "reference_path": "compute.examples.keysearch.run",
    "assimilator_path": "compute.examples.keysearch.assimilate",
}


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "ok"), _cases(APP_BOUNDS))
def test_the_admin_and_the_api_agree_on_an_apps_bounds(
    admin_client, api, owned_project, field, value, ok
):
    admin_form = {
        "project": owned_project.pk,
        "name": "by-admin",
        "title": "By the admin",
        "comparator": "exact",
        "reference_path": "tests.support.square",
        "assimilator_path": "compute.assimilation.store_output",
        "tolerance": 1e-9,
        "spot_check_rate": 0.1,
        "min_cores": 1,
        "min_memory_mb": 0,
        "versions-TOTAL_FORMS": 0,
        "versions-INITIAL_FORMS": 0,
        field: value,
    }

    by_admin = admin_client.post(_admin_url(App, "add"), admin_form)
    by_api = api.post_json("/api/projects/mine/apps", {**API_APP, field: value})

    assert (by_admin.status_code == 302) is ok, by_admin.context and by_admin.context["errors"]
    assert (by_api.status_code == 201) is ok, by_api.content
    assert App.objects.filter(name="by-admin").exists() is ok
    assert App.objects.filter(name="search").exists() is ok
    if ok:
        assert getattr(App.objects.get(name="by-admin"), field) == value
        assert getattr(App.objects.get(name="search"), field) == value
        assert body(by_api)[field] == value

    square = owned_project.apps.get(name="square")
    before = getattr(square, field)
    response = api.client.patch(
        "/api/projects/mine/apps/square",
        {field: value},
        content_type="application/json",
        **api.headers,
    )
    square.refresh_from_db()
    assert (response.status_code == 200) is ok, response.content
    assert getattr(square, field) == (value if ok else before)


@pytest.mark.django_db
def test_the_api_sets_and_shows_the_quota_the_extension_and_the_cores(api, owned_project):
    created = api.post_json(
        "/api/projects",
        {"slug": "tuned", "name": "Tuned", "max_deadline_extension": 0, "daily_quota_per_core": 7},
    )
    assert created.status_code == 201, created.content
    assert (body(created)["max_deadline_extension"], body(created)["daily_quota_per_core"]) == (
        0,
        7,
    )
    app = api.post_json("/api/projects/tuned/apps", {**API_APP, "min_cores": 4})
    assert app.status_code == 201, app.content

    shown = body(api.get("/api/projects/tuned"))

    assert (shown["max_deadline_extension"], shown["daily_quota_per_core"]) == (0, 7)
    assert shown["apps"][0]["min_cores"] == 4
    assert App.objects.get(project__slug="tuned").min_cores == 4


@pytest.mark.django_db
def test_an_update_changes_only_what_it_sends_and_all_or_nothing(api, owner):
    Project.objects.create(owner=owner, slug="mine", name="Mine", **PROJECT_BASE)

    def patch(data: dict):
        return api.client.patch(
            "/api/projects/mine", data, content_type="application/json", **api.headers
        )

    assert patch({"daily_quota_per_core": 50, "name": "Renamed"}).status_code == 200
    # Each value is in bounds, together they break a rule: nothing changes.
    refused = patch({"min_quorum": 5, "target_nresults": 3, "daily_quota_per_core": 9})
    assert refused.status_code == 400
    assert "target_nresults" in body(refused)["detail"]
    assert patch({"slug": "other"}).status_code == 200  # not a field of an update: ignored

    project = Project.objects.get()
    assert (project.slug, project.name, project.daily_quota_per_core) == ("mine", "Renamed", 50)
    assert (project.min_quorum, project.target_nresults) == (1, 1)


@pytest.mark.django_db
def test_nobody_updates_another_owners_project(api, project_factory):
    theirs = project_factory(slug="theirs", delay_bound=3600)

    response = api.client.patch(
        "/api/projects/theirs", {"delay_bound": 60}, content_type="application/json", **api.headers
    )

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.delay_bound == 3600


def _plain(number: float) -> str:
    return str(int(number)) if number == int(number) else str(number)


def test_the_owners_guide_states_every_settable_field_with_its_bounds():
    guide = (Path(settings.BASE_DIR) / "docs" / "project-owners.md").read_text()
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `(\w+)` \|.*$", guide, re.M)}
    for model, fields, promised in (
        (Project, PROJECT_FIELDS, PROJECT_BOUNDS),
        (App, APP_FIELDS, APP_BOUNDS),
    ):
        for field in fields:
            assert field in rows, f"docs/project-owners.md has no row for {field}"
        for field, (low, high) in promised.items():
            assert limits(model, field) == (low, high), field
            assert f"{_plain(low)} to {_plain(high)}" in rows[field], rows[field]
