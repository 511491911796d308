from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from django.core.management import CommandError, call_command

import pytest

from compute.assimilation import store_output
from compute.models import Batch, Project, WorkUnit
from compute.scheduler import lease_replicas
from compute.submission import create_batch

pytestmark = pytest.mark.django_db


def run(*args: str, **options: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def submit(project: Project, n: int, **kwargs: object) -> Batch:
    inputs = [{"x": i} for i in range(n)]
    return create_batch(project, project.apps.get(), inputs, name="test", **kwargs)


def write(tmp_path: Path, text: str | bytes, name: str = "inputs.jsonl") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


# --- compute_status ----------------------------------------------------------------------------


def test_status_prints_a_table_of_the_projects_queues(project_factory, host_factory):
    project = project_factory(slug="squares")
    submit(project, 3)
    lease_replicas(host_factory(project), 2)
    project_factory(slug="idle", is_active=False)

    out, _ = run("compute_status")

    lines = out.splitlines()
    assert lines[0].split()[:5] == ["project", "unsent", "in", "prog", "validate"]
    squares = next(line for line in lines if line.startswith("squares"))
    assert squares.split()[1:5] == ["4", "2", "0", "0"]
    assert any(line.startswith("idle *") for line in lines)
    assert "hosts active in the last hour (any project): 0" in out
    assert "validation backlog: 0 work units; assimilation backlog: 0 work units" in out


def test_status_prints_json(project_factory):
    project = project_factory(slug="squares")
    submit(project, 2)

    out, _ = run("compute_status", "--json")

    data = json.loads(out)
    assert data["hosts_active"] == 0
    (row,) = data["projects"]
    assert (row["slug"], row["unsent"], row["need_validate"]) == ("squares", 4, 0)


def test_status_shows_only_the_project_asked_for(project_factory):
    project_factory(slug="a")
    project_factory(slug="b")

    out, _ = run("compute_status", "--project", "b", "--json")

    assert [p["slug"] for p in json.loads(out)["projects"]] == ["b"]


def test_status_refuses_an_unknown_project(db):
    with pytest.raises(CommandError, match="no project with the slug 'nope'"):
        run("compute_status", "--project", "nope")


def test_status_says_so_when_there_are_no_projects(db):
    out, _ = run("compute_status")

    assert "(no projects)" in out


# --- submit_batch ------------------------------------------------------------------------------


def test_submit_creates_a_batch_from_a_file_and_prints_its_id(project_factory, tmp_path):
    project = project_factory(slug="squares")
    path = write(tmp_path, '{"x": 1}\n\n{"x": 2}\n{"x": 3}\n')

    out, _ = run("submit_batch", "squares", "square", path)

    batch = Batch.objects.get()
    assert out.strip() == f"batch {batch.id}: 3 work units"
    assert batch.project == project
    assert batch.name == "inputs.jsonl"
    assert [wu.input for wu in batch.workunits.order_by("id")] == [{"x": 1}, {"x": 2}, {"x": 3}]


def test_submit_takes_a_name_and_a_priority(project_factory, tmp_path):
    project_factory(slug="squares")
    path = write(tmp_path, '{"x": 1}\n')

    run("submit_batch", "squares", "square", path, "--name", "first run", "--priority", "5")

    batch = Batch.objects.get()
    assert (batch.name, batch.priority) == ("first run", 5)
    assert batch.workunits.get().priority == 5


def test_submit_reads_stdin_for_a_dash(project_factory):
    project_factory(slug="squares")
    stdin = io.BytesIO(b'{"x": 7}\n{"x": 8}\n')

    out, _ = run("submit_batch", "squares", "square", "-", stdin=stdin)

    batch = Batch.objects.get()
    assert out.strip() == f"batch {batch.id}: 2 work units"
    assert batch.name.startswith("square ")


def test_submit_names_the_bad_line_and_creates_nothing(project_factory, tmp_path):
    project_factory(slug="squares")
    path = write(tmp_path, '{"x": 1}\n{"x": \n{"x": 3}\n')

    with pytest.raises(CommandError, match="line 2: not valid JSON"):
        run("submit_batch", "squares", "square", path)

    assert not Batch.objects.exists()
    assert not WorkUnit.objects.exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"x": Infinity}', "line 2: not valid JSON"),
        ('{"x": "\\ud800"}', "line 2: contains a lone surrogate"),
    ],
)
def test_submit_names_a_line_the_database_cannot_store(project_factory, tmp_path, line, message):
    project_factory(slug="squares")
    path = write(tmp_path, '{"x": 1}\n' + line + "\n")

    with pytest.raises(CommandError, match=message):
        run("submit_batch", "squares", "square", path)

    assert not Batch.objects.exists()


def test_submit_names_a_line_that_is_not_utf8(project_factory, tmp_path):
    project_factory(slug="squares")
    path = write(tmp_path, b'{"x": 1}\n{"x": 2}\n"\xff\xfe"\n')

    with pytest.raises(CommandError, match="line 3: not UTF-8 text"):
        run("submit_batch", "squares", "square", path)

    assert not Batch.objects.exists()


def test_submit_refuses_an_empty_file(project_factory, tmp_path):
    project_factory(slug="squares")
    path = write(tmp_path, "\n\n")

    with pytest.raises(CommandError, match="no inputs"):
        run("submit_batch", "squares", "square", path)


def test_submit_refuses_a_missing_file(project_factory, tmp_path):
    project_factory(slug="squares")

    with pytest.raises(CommandError, match="cannot read"):
        run("submit_batch", "squares", "square", str(tmp_path / "missing.jsonl"))


def test_submit_refuses_an_unknown_project_or_app(project_factory, tmp_path):
    project_factory(slug="squares")
    path = write(tmp_path, '{"x": 1}\n')

    with pytest.raises(CommandError, match="no project with the slug 'cubes'"):
        run("submit_batch", "cubes", "square", path)
    with pytest.raises(CommandError, match="'squares' has no app named 'cube'"):
        run("submit_batch", "squares", "cube", path)


def test_submit_refuses_a_priority_out_of_range(project_factory, tmp_path):
    project_factory(slug="squares")
    path = write(tmp_path, '{"x": 1}\n')

    with pytest.raises(CommandError, match="--priority must be between"):
        run("submit_batch", "squares", "square", path, "--priority", "5000")


# --- export_results ----------------------------------------------------------------------------


@pytest.fixture
def finished_batch(project_factory) -> Batch:
    """A batch of three whose first two work units have been assimilated."""
    batch = submit(project_factory(), 3)
    for wu in batch.workunits.order_by("id")[:2]:
        store_output(wu, {"y": wu.input["x"] ** 2, "note": "é"})
    return batch


def test_export_writes_json_lines_to_stdout(finished_batch):
    out, err = run("export_results", str(finished_batch.id))

    rows = [json.loads(line) for line in out.splitlines()]
    names = list(finished_batch.workunits.order_by("id").values_list("name", flat=True))
    assert rows == [
        {"workunit": names[0], "input": {"x": 0}, "output": {"y": 0, "note": "é"}},
        {"workunit": names[1], "input": {"x": 1}, "output": {"y": 1, "note": "é"}},
    ]
    assert "2 results" in err
    assert "still in progress" in err


def test_export_writes_csv_to_a_file(finished_batch, tmp_path):
    path = tmp_path / "results.csv"

    out, err = run(
        "export_results", str(finished_batch.id), "--format", "csv", "--output", str(path)
    )

    assert out == ""
    assert f"written to {path}" in err
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["workunit", "input", "output"]
    assert len(rows) == 3
    assert json.loads(rows[1][1]) == {"x": 0}
    assert json.loads(rows[2][2]) == {"y": 1, "note": "é"}


def test_export_of_a_batch_without_results_writes_only_the_header(project_factory):
    batch = submit(project_factory(), 1)

    out, err = run("export_results", str(batch.id), "--format", "csv")

    assert out.splitlines() == ["workunit,input,output"]
    assert "0 results" in err


def test_export_refuses_an_unknown_batch(db):
    with pytest.raises(CommandError, match="no batch with the id 999"):
        run("export_results", "999")


def test_export_refuses_an_output_it_cannot_write(finished_batch, tmp_path):
    with pytest.raises(CommandError, match="cannot write"):
        run("export_results", str(finished_batch.id), "--output", str(tmp_path / "no" / "f"))
