"""Projects through the API: each owner sees and creates only their own."""

from __future__ import annotations

import pytest

from compute.models import Project
from tests.api.conftest import body

NEW = {"slug": "collatz", "name": "Collatz search"}


@pytest.mark.django_db
def test_the_list_holds_only_the_callers_projects(api, owned_project, project_factory):
    project_factory(slug="theirs")

    projects = body(api.get("/api/projects"))

    assert [p["slug"] for p in projects] == ["mine"]
    [app] = projects[0]["apps"]
    assert app["name"] == "square"
    assert app["current_version"]["version"] == 1
    assert projects[0]["url"] == "http://testserver/projects/mine/"
    assert projects[0]["dashboard_url"] == "http://testserver/owners/projects/mine/"


@pytest.mark.django_db
def test_listing_takes_a_fixed_number_of_queries(
    api, owner, project_factory, django_assert_max_num_queries
):
    for i in range(5):
        project_factory(owner=owner, slug=f"p{i}")

    # Token lookup and its touch, projects, apps, versions.
    with django_assert_max_num_queries(6):
        assert len(body(api.get("/api/projects"))) == 5


@pytest.mark.django_db
def test_a_permitted_user_creates_a_project_they_own(api, owner):
    response = api.post_json("/api/projects", {**NEW, "min_quorum": 1, "target_nresults": 1})

    assert response.status_code == 201
    project = Project.objects.get(slug="collatz")
    assert project.owner == owner
    assert (project.min_quorum, project.target_nresults) == (1, 1)
    assert body(response)["apps"] == []


@pytest.mark.django_db
def test_staff_may_create_projects(api_as, user_factory):
    staff = user_factory(is_staff=True)

    assert api_as(staff).post_json("/api/projects", NEW).status_code == 201


@pytest.mark.django_db
def test_other_users_may_not_create_projects(api_as, user_factory):
    response = api_as(user_factory()).post_json("/api/projects", NEW)

    assert response.status_code == 403
    assert "compute.add_project" in body(response)["detail"]
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_a_taken_slug_is_a_conflict(api, project_factory):
    project_factory(slug="collatz")

    response = api.post_json("/api/projects", NEW)

    assert response.status_code == 409
    assert "already exists" in body(response)["detail"]


@pytest.mark.django_db
def test_an_inconsistent_replication_policy_is_refused(api):
    response = api.post_json("/api/projects", {**NEW, "min_quorum": 3, "target_nresults": 2})

    assert response.status_code == 400
    assert "target_nresults" in body(response)["detail"]
    assert not Project.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    [
        {"slug": "has space", "name": "x"},
        {"slug": "", "name": "x"},
        {"slug": "ok"},
        {"slug": "ok", "name": "x", "min_quorum": 0},
        {"slug": "ok", "name": "x", "delay_bound": 1},
        {"slug": "ok", "name": "x" * 121},
        {"slug": "ok", "name": "x", "is_public": 0},
        {"slug": "ok", "name": "x", "min_quorum": "2"},
        {"slug": "ok", "name": 5},
    ],
)
def test_bodies_outside_the_schema_are_422(api, bad):
    response = api.post_json("/api/projects", bad)

    assert response.status_code == 422
    assert isinstance(body(response)["detail"], list)
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_nul_characters_are_refused(api):
    response = api.post_json("/api/projects", {**NEW, "name": "a\x00b"})

    assert response.status_code == 400
    assert "name: contains a NUL character" in body(response)["detail"]
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_a_project_is_shown_to_its_owner_only(api, owned_project, project_factory):
    theirs = project_factory(slug="theirs")

    assert body(api.get("/api/projects/mine"))["name"] == "Mine"
    for path in ("/api/projects/theirs", "/api/projects/nope", "/api/projects/theirs/apps"):
        response = api.get(path)
        assert response.status_code == 404
        assert body(response) == {"detail": "Not found."}
    assert theirs.owner != owned_project.owner


@pytest.mark.django_db
def test_names_are_returned_as_data_not_markup(api):
    api.post_json("/api/projects", {**NEW, "name": "<script>alert(1)</script>"})

    response = api.get("/api/projects/collatz")

    assert response["Content-Type"].startswith("application/json")
    assert body(response)["name"] == "<script>alert(1)</script>"


def test_every_setting_a_project_is_created_with_reads_back(api, owner):
    settings = {
        "min_quorum": 3,
        "target_nresults": 4,
        "max_error_results": 6,
        "max_total_results": 12,
        "max_success_results": 7,
        "delay_bound": 900,
    }
    created = api.post_json("/api/projects", {"slug": "tuned", "name": "Tuned", **settings})
    assert created.status_code == 201, created.content

    shown = api.get("/api/projects/tuned").json()

    assert {k: shown[k] for k in settings} == settings
    assert {k: created.json()[k] for k in settings} == settings
