"""Submitting batches (JSON Lines or a sweep), following and cancelling them."""

from __future__ import annotations

import pytest

from compute.models import Batch, WorkUnit
from compute.states import BatchState
from tests.api.conftest import body

SUBMIT = "/api/projects/mine/apps/square/batches"
SWEEP = "/api/projects/mine/apps/square/sweeps"


@pytest.mark.django_db
def test_json_lines_make_one_work_unit_a_line(api, owned_project, owner):
    response = api.post_jsonl(SUBMIT + "?name=first&priority=5", '{"x": 1}\n\n{"x": 2}\n{"x": 3}')

    assert response.status_code == 201
    data = body(response)
    assert (data["name"], data["state"], data["n_workunits"]) == ("first", "in_progress", 3)
    assert data["results_url"] == f"http://testserver/api/batches/{data['id']}/results"
    batch = Batch.objects.get()
    assert batch.submitter == owner
    assert batch.priority == 5
    inputs = list(WorkUnit.objects.order_by("id").values_list("input", flat=True))
    assert inputs == [{"x": 1}, {"x": 2}, {"x": 3}]


@pytest.mark.django_db
def test_a_batch_without_a_name_is_named_after_its_app_and_time(api, owned_project):
    data = body(api.post_jsonl(SUBMIT, '{"x": 1}\n'))

    assert data["name"].startswith("square 20")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"x": 1}\n{"x": \n', "line 2: not valid JSON"),
        (b'{"x": 1}\n\xff\n', "line 2: not UTF-8"),
        ("\n\n", "no inputs"),
        ('{"x": 1}\n{"x": NaN}\n', "line 2: not valid JSON (NaN is not a JSON number)"),
        ('{"x": 1}\n{"x": -Infinity}\n', "line 2: not valid JSON (-Infinity is not"),
        ('{"x": 1}\n{"x": 1e999}\n', "line 2: contains NaN or an infinity"),
        ('{"x": 1}\n{"x": ' + "9" * 5000 + "}\n", "line 2: a number with too many digits"),
        ('{"x": 1}\n{"\\ud800": 2}\n', "line 2: contains a lone surrogate"),
    ],
)
def test_a_bad_line_refuses_the_whole_batch(api, owned_project, payload, message):
    response = api.post_jsonl(SUBMIT, payload)

    assert response.status_code == 400
    assert message in body(response)["detail"]
    assert not Batch.objects.exists()
    assert not WorkUnit.objects.exists()


@pytest.mark.django_db
def test_text_the_database_cannot_store_is_refused(api, owned_project):
    jsonl = api.post_jsonl(SUBMIT, '{"x": 1}\n{"x": "a\\u0000b"}\n')
    sweep = api.post_json(
        SWEEP, {"parameter": "x", "start": 0, "stop": 2, "step": 1, "template": {"k\x00": 1}}
    )

    assert jsonl.status_code == 400
    assert "line 2: contains a NUL character" in body(jsonl)["detail"]
    assert sweep.status_code == 400
    assert not Batch.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["NaN", "1e999", '"\\ud800"', '"\\u0000"'])
def test_a_sweep_template_the_database_cannot_store_is_refused(api, owned_project, value):
    response = api.client.post(
        SWEEP,
        # Written out: json.dumps would not write these as they arrive from a client.
        '{"parameter": "x", "start": 0, "stop": 2, "step": 1, "template": {"k": ' + value + "}}",
        content_type="application/json",
        **api.headers,
    )

    assert response.status_code == 400, response.content
    assert body(response)["detail"].startswith("input 1: contains ")
    assert not Batch.objects.exists()
    assert not WorkUnit.objects.exists()


@pytest.mark.django_db
def test_json_lines_need_their_content_type(api, owned_project):
    response = api.post_jsonl(SUBMIT, '{"x": 1}\n', content_type="application/json")

    assert response.status_code == 400
    assert "application/x-ndjson" in body(response)["detail"]


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413(api, owned_project, settings):
    settings.COMPUTE = {**settings.COMPUTE, "API_MAX_BATCH_BYTES": 100}

    response = api.post_jsonl(SUBMIT, '{"x": 1}\n' * 20)

    assert response.status_code == 413
    assert not Batch.objects.exists()


@pytest.mark.django_db
def test_an_input_over_the_engines_limit_is_refused(api, owned_project):
    response = api.post_jsonl(SUBMIT, '{"x": "' + "a" * 300_000 + '"}\n')

    assert response.status_code == 400
    assert "larger than" in body(response)["detail"]


@pytest.mark.django_db
def test_priorities_are_bounded(api, owned_project):
    assert api.post_jsonl(SUBMIT + "?priority=5000", '{"x": 1}').status_code == 422


@pytest.mark.django_db
def test_an_app_without_a_kernel_takes_no_work(api, owned_project):
    owned_project.apps.get().versions.all().delete()

    response = api.post_jsonl(SUBMIT, '{"x": 1}\n')

    assert response.status_code == 400
    assert "upload a version" in body(response)["detail"]


@pytest.mark.django_db
def test_a_sweep_makes_one_input_per_value(api, owned_project):
    response = api.post_json(
        SWEEP,
        {"template": {"y": "k"}, "parameter": "x", "start": 0, "stop": 1, "step": 0.25},
    )

    assert response.status_code == 201
    inputs = list(WorkUnit.objects.order_by("id").values_list("input", flat=True))
    assert inputs == [{"y": "k", "x": v} for v in (0, 0.25, 0.5, 0.75)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"start": 0, "stop": 10, "step": 0}, "step must not be zero"),
        ({"start": 5, "stop": 1, "step": 1}, "empty"),
        ({"start": 0, "stop": 10_000_000, "step": 1}, "at most 1,000,000"),
    ],
)
def test_bad_sweeps_create_nothing(api, owned_project, sweep, message):
    response = api.post_json(SWEEP, {"parameter": "x", **sweep})

    assert response.status_code == 400
    assert message in body(response)["detail"]
    assert not Batch.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sweep",
    [
        {"start": 0, "stop": 1e300, "step": 1e290},
        {"start": "0", "stop": 2, "step": 1},
        {"start": 0, "stop": 2, "step": 1, "priority": 1.5},
        {"start": 0, "stop": 2, "step": 1, "template": []},
    ],
)
def test_sweeps_outside_the_schema_are_422(api, owned_project, sweep):
    assert api.post_json(SWEEP, {"parameter": "x", **sweep}).status_code == 422
    assert not Batch.objects.exists()


@pytest.mark.django_db
def test_whole_numbers_written_as_floats_are_whole_numbers(api, owned_project):
    response = api.post_json(
        SWEEP, {"parameter": "x", "start": 0, "stop": 2, "step": 1, "priority": 3.0}
    )

    assert response.status_code == 201
    assert body(response)["priority"] == 3


@pytest.mark.django_db
def test_progress_and_the_list_of_batches(api, owned_project):
    first = body(api.post_jsonl(SUBMIT + "?name=a", '{"x": 1}\n{"x": 2}'))
    second = body(api.post_jsonl(SUBMIT + "?name=b", '{"x": 3}'))
    Batch.objects.filter(id=first["id"]).update(n_assimilated=1)

    status = body(api.get(f"/api/batches/{first['id']}"))
    listed = body(api.get("/api/projects/mine/batches"))
    page = body(api.get("/api/projects/mine/batches?limit=1&offset=1"))

    assert (status["n_assimilated"], status["progress"]) == (1, 0.5)
    assert [b["id"] for b in listed] == [second["id"], first["id"]]
    assert [b["id"] for b in page] == [first["id"]]


@pytest.mark.django_db
def test_cancelling_withdraws_the_work(api, owned_project):
    batch = body(api.post_jsonl(SUBMIT, '{"x": 1}\n{"x": 2}'))

    response = api.post(f"/api/batches/{batch['id']}/cancel")

    assert response.status_code == 200
    assert body(response)["cancelled"] == 2
    assert body(response)["batch"]["state"] == "cancelled"
    assert all(wu.error_mask for wu in WorkUnit.objects.all())
    again = api.post(f"/api/batches/{batch['id']}/cancel")
    assert (again.status_code, body(again)["cancelled"]) == (200, 0)


@pytest.mark.django_db
def test_a_completed_batch_cannot_be_cancelled(api, owned_project):
    batch = body(api.post_jsonl(SUBMIT, '{"x": 1}'))
    Batch.objects.filter(id=batch["id"]).update(state=BatchState.COMPLETED)

    response = api.post(f"/api/batches/{batch['id']}/cancel")

    assert response.status_code == 409


@pytest.mark.django_db
def test_another_owners_batches_are_not_found(api, api_as, project_factory):
    theirs = project_factory(slug="theirs")
    stranger = api_as(theirs.owner)
    batch = body(stranger.post_jsonl("/api/projects/theirs/apps/square/batches", '{"x": 1}'))

    for response in (
        api.get(f"/api/batches/{batch['id']}"),
        api.post(f"/api/batches/{batch['id']}/cancel"),
        api.get(f"/api/batches/{batch['id']}/results"),
        api.get("/api/projects/theirs/batches"),
        api.post_jsonl("/api/projects/theirs/apps/square/batches", '{"x": 1}'),
        api.post_json(
            "/api/projects/theirs/apps/square/sweeps",
            {"parameter": "x", "start": 0, "stop": 2, "step": 1},
        ),
    ):
        assert response.status_code == 404
    assert Batch.objects.get().state == BatchState.IN_PROGRESS
    assert Batch.objects.count() == 1
