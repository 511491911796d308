"""Results stream out as JSON Lines or CSV, to the batch's owner only."""

from __future__ import annotations

import csv
import io
import json

import pytest

from compute.models import Batch, WorkUnit
from compute.states import BatchState
from tests.api.conftest import body
from tests.simulation import SimHost, Simulation

SUBMIT = "/api/projects/mine/apps/square/batches"
INPUTS = [{"x": 2, "label": 'a,b "é"\nnew line'}, {"x": 3, "label": "<script>"}, {"x": -4}]


@pytest.fixture
def computed(api, owned_project, host_factory):
    """A batch of three inputs computed by two honest volunteers."""
    lines = "\n".join(json.dumps(i) for i in INPUTS)
    batch = body(api.post_jsonl(SUBMIT + "?name=squares", lines))
    hosts = [SimHost(host_factory(owned_project)) for _ in range(2)]
    Simulation(hosts).run_until_done(WorkUnit.objects.all())
    assert Batch.objects.get().state == BatchState.COMPLETED
    return batch


def read(response) -> str:
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db
def test_json_lines_hold_each_work_unit_input_and_output(api, computed):
    response = api.get(f"/api/batches/{computed['id']}/results")

    text = read(response)
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="batch-{computed["id"]}.jsonl"'
    assert response["X-Batch-State"] == "completed"
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["input"] for r in rows] == INPUTS
    assert [r["output"] for r in rows] == [{"y": 4}, {"y": 9}, {"y": 16}]
    assert rows[0]["workunit"] == f"mine_{computed['id']}_0"


@pytest.mark.django_db
def test_csv_has_a_header_and_json_cells(api, computed):
    response = api.get(f"/api/batches/{computed['id']}/results?format=csv")

    text = read(response)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["workunit", "input", "output"]
    assert [json.loads(r[1]) for r in rows[1:]] == INPUTS
    assert [json.loads(r[2]) for r in rows[1:]] == [{"y": 4}, {"y": 9}, {"y": 16}]


@pytest.mark.django_db
def test_results_so_far_come_while_the_batch_runs(api, owned_project):
    batch = body(api.post_jsonl(SUBMIT, '{"x": 1}'))

    response = api.get(f"/api/batches/{batch['id']}/results?format=csv")

    assert read(response) == "workunit,input,output\r\n"
    assert response["X-Batch-State"] == "in_progress"


@pytest.mark.django_db
def test_an_unknown_format_is_refused(api, computed):
    assert api.get(f"/api/batches/{computed['id']}/results?format=xml").status_code == 422


@pytest.mark.django_db
def test_many_results_stream_in_chunks(api, owned_project):
    from compute.api.downloads import csv_chunks, jsonl_chunks

    rows = [{"workunit": f"w{i}", "input": i, "output": i * i} for i in range(450)]

    assert len(list(jsonl_chunks(iter(rows)))) == 3
    assert len(list(csv_chunks(iter(rows)))) == 3
    assert "".join(jsonl_chunks(iter(rows))).count("\n") == 450


@pytest.mark.django_db
def test_the_owner_downloads_from_the_dashboard_too(client, owner, user_factory, computed):
    url = f"/owners/batches/{computed['id']}/results.csv"
    assert client.get(url).status_code == 302  # sign in first

    client.force_login(user_factory())
    assert client.get(url).status_code == 404

    client.force_login(owner)
    text = read(client.get(url))
    assert text.startswith("workunit,input,output")
    assert len(text.strip().splitlines()) >= 4
    jsonl = read(client.get(f"/owners/batches/{computed['id']}/results.jsonl"))
    assert len(jsonl.splitlines()) == 3
