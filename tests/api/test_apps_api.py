"""Apps through the API, and the allow-list of the Python code they may name."""

from __future__ import annotations

import sys

import pytest

from compute.models import App
from tests.api.conftest import body

APP = {
    "name": "search",
    "title": "Key search",
    "reference_path": "compute.examples.keysearch.run",
    "assimilator_path": "compute.examples.keysearch.assimilate",
}


@pytest.mark.django_db
def test_an_owner_creates_an_app_in_their_project(api, owned_project):
    response = api.post_json("/api/projects/mine/apps", {**APP, "comparator": "numeric"})

    assert response.status_code == 201
    app = App.objects.get(name="search")
    assert app.project == owned_project
    assert app.reference_path == "compute.examples.keysearch.run"
    assert app.comparator == "numeric"
    assert body(response)["current_version"] is None
    names = [a["name"] for a in body(api.get("/api/projects/mine/apps"))]
    assert names == ["search", "square"]


@pytest.mark.django_db
def test_the_default_assimilator_keeps_outputs(api, owned_project):
    data = {k: v for k, v in APP.items() if k != "assimilator_path"}

    assert api.post_json("/api/projects/mine/apps", data).status_code == 201
    assert App.objects.get(name="search").assimilator_path == "compute.assimilation.store_output"


@pytest.mark.django_db
def test_nobody_adds_apps_to_another_owners_project(api, project_factory):
    project_factory(slug="theirs")

    response = api.post_json("/api/projects/theirs/apps", APP)

    assert response.status_code == 404
    assert not App.objects.filter(name="search").exists()


@pytest.mark.django_db
def test_a_taken_app_name_is_a_conflict(api, owned_project):
    response = api.post_json("/api/projects/mine/apps", {**APP, "name": "square"})

    assert response.status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("os.system", "not in a package"),
        ("subprocess.run", "not in a package"),
        ("tests.support.square", "not in a package"),
        ("appsevil.run", "not in a package"),
        ("compute.examples.abc_triples.gcd", "not a function defined in"),  # math.gcd
        ("compute.examples.keysearch.hashlib", "not callable"),
        ("compute.examples.keysearch._HEX", "not a dotted path"),
        ("compute.examples.keysearch.__class__", "not a dotted path"),
        ("compute.examples.nothing.run", "cannot import"),
        ("compute.examples.keysearch.missing", "no attribute"),
        ("run", "not a dotted path"),
        ("compute.examples..run", "not a dotted path"),
    ],
)
def test_code_outside_the_allowed_packages_is_refused(api, owned_project, path, message):
    response = api.post_json("/api/projects/mine/apps", {**APP, "reference_path": path})

    assert response.status_code == 400
    assert "reference_path" in body(response)["detail"]
    assert message in body(response)["detail"]
    assert not App.objects.filter(name="search").exists()


@pytest.mark.django_db
def test_a_refused_module_is_never_imported(api, owned_project):
    # Importing antigravity opens a web browser: it must not even be looked at.
    assert "antigravity" not in sys.modules

    response = api.post_json(
        "/api/projects/mine/apps", {**APP, "assimilator_path": "antigravity.fly"}
    )

    assert response.status_code == 400
    assert "antigravity" not in sys.modules


@pytest.mark.django_db
def test_operators_choose_the_allowed_packages(api, owned_project, settings):
    settings.COMPUTE = {**settings.COMPUTE, "APP_CODE_PACKAGES": ["tests.support"]}

    ok = api.post_json(
        "/api/projects/mine/apps",
        {
            **APP,
            "reference_path": "tests.support.square",
            "assimilator_path": "tests.support.recording_handler",
        },
    )
    refused = api.post_json("/api/projects/mine/apps", {**APP, "name": "other"})

    assert ok.status_code == 201
    assert refused.status_code == 400


@pytest.mark.django_db
def test_a_custom_comparator_needs_an_allowed_path(api, owned_project, settings):
    settings.COMPUTE = {**settings.COMPUTE, "APP_CODE_PACKAGES": ["compute.examples.", "tests."]}
    custom = {**APP, "comparator": "custom"}

    missing = api.post_json("/api/projects/mine/apps", custom)
    stray = api.post_json(
        "/api/projects/mine/apps", {**APP, "comparator_path": "tests.support.same_parity"}
    )
    ok = api.post_json(
        "/api/projects/mine/apps", {**custom, "comparator_path": "tests.support.same_parity"}
    )

    assert missing.status_code == 400
    assert "custom comparator needs a dotted path" in body(missing)["detail"]
    assert stray.status_code == 400
    assert ok.status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    [
        {"tolerance": -1},
        {"spot_check_rate": 2},
        {"comparator": "fuzzy"},
        {"name": "no spaces"},
        {"title": ""},
    ],
)
def test_app_fields_outside_the_schema_are_422(api, owned_project, bad):
    assert api.post_json("/api/projects/mine/apps", {**APP, **bad}).status_code == 422
    assert not App.objects.filter(title="Key search").exists()


def test_a_schema_error_names_the_field_where_the_client_put_it(api, owned_project):
    response = api.post_json("/api/projects/mine/apps", {**APP, "name": "no spaces"})

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "name"]
    assert error["msg"]
