"""The command-line client against a live server (plain HTTP through urllib)."""

from __future__ import annotations

import io
import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from compute.api.cli import main
from compute.models import Batch, WorkUnit
from compute.states import BatchState
from tests.simulation import SimHost, Simulation

KERNEL = (
    "export async function run(input, progress) {\n"
    "  await progress(1);\n"
    "  return {y: input.x * input.x};\n"
    "}\n"
)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(live_server, owner, key_for):
    env = {"SOCIALGRID_URL": live_server.url, "SOCIALGRID_TOKEN": key_for(owner)}

    def run(*args: str, stdin: bytes = b"", **overrides: str) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(args), {**env, **overrides}, out, err, io.BytesIO(stdin))
        return Run(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def server_project(owner, project_factory):
    return project_factory(owner=owner, slug="mine", name="Mine")


@pytest.mark.django_db(transaction=True)
def test_projects_are_created_listed_and_shown(cli):
    created = cli("projects", "create", "collatz", "Collatz search", "--quorum", "1")
    listed = cli("projects", "list")
    shown = cli("--json", "projects", "show", "collatz")

    assert created.code == 0, created.err
    assert "created project collatz" in created.out
    assert listed.out.startswith("collatz\tCollatz search\t(no apps)")
    assert json.loads(shown.out)["slug"] == "collatz"


@pytest.mark.django_db(transaction=True)
def test_an_app_gets_a_kernel_and_a_batch_that_volunteers_compute(
    cli, server_project, host_factory, tmp_path
):
    kernel = tmp_path / "square.js"
    kernel.write_text(KERNEL)
    app = cli(
        "apps", "create", "mine", "search", "--title", "Search",
        "--reference", "compute.examples.keysearch.run", "--comparator", "numeric",
        "--tolerance", "0.001",
    )  # fmt: skip
    version = cli("versions", "upload", "mine", "square", str(kernel))
    listed = cli("apps", "list", "mine")
    submitted = cli("batches", "submit", "mine", "square", "-", "--name", "from stdin",
                    stdin=b'{"x": 2}\n{"x": 3}\n')  # fmt: skip

    assert app.code == 0, app.err
    assert version.code == 0, version.err
    assert "uploaded version 2" in version.out
    assert "search\tSearch\tno kernel yet" in listed.out
    assert "square\tSquare\tv2 kernel" in listed.out
    assert submitted.code == 0, submitted.err
    batch_id = int(submitted.out)
    assert "batch" in submitted.err
    assert "0/2 work units done" in submitted.err

    Simulation([SimHost(host_factory(server_project)) for _ in range(2)]).run_until_done(
        WorkUnit.objects.all()
    )
    status = cli("batches", "status", str(batch_id))
    waited = cli("batches", "wait", str(batch_id), "--interval", "0.1")
    to_stdout = cli("batches", "results", str(batch_id))
    target = tmp_path / "out.csv"
    to_file = cli("batches", "results", str(batch_id), "--format", "csv", "--output", str(target))

    assert "completed, 2/2 work units done (100.0%)" in status.out
    assert waited.code == 0
    assert "completed" in waited.out
    assert [json.loads(line)["output"] for line in to_stdout.out.splitlines()] == [
        {"y": 4},
        {"y": 9},
    ]
    assert to_file.code == 0
    assert "written to" in to_file.err
    assert target.read_text().splitlines()[0] == "workunit,input,output"
    assert not Path(str(target) + ".part").exists()


@pytest.mark.django_db(transaction=True)
def test_a_sweep_is_submitted_listed_and_cancelled(cli, server_project):
    sweep = cli(
        "batches", "sweep", "mine", "square", "--parameter", "x", "--start", "0",
        "--stop", "3", "--template", '{"k": 1}',
    )  # fmt: skip
    batch_id = int(sweep.out)
    listed = cli("batches", "list", "mine")
    cancelled = cli("batches", "cancel", str(batch_id))

    assert [wu.input for wu in WorkUnit.objects.order_by("id")] == [
        {"k": 1, "x": 0},
        {"k": 1, "x": 1},
        {"k": 1, "x": 2},
    ]
    assert f"batch {batch_id}" in listed.out
    assert cancelled.code == 0
    assert "cancelled 3 work units" in cancelled.out
    assert Batch.objects.get().state == BatchState.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_the_servers_refusals_are_printed_with_exit_status_1(cli, server_project, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\nnot json\n')

    refused = cli("batches", "submit", "mine", "square", str(bad))
    missing = cli("batches", "status", "999999")
    schema = cli("projects", "create", "no spaces", "X")

    assert (refused.code, refused.out) == (1, "")
    assert "HTTP 400: line 2: not valid JSON" in refused.err
    assert missing.code == 1
    assert "HTTP 404: Not found." in missing.err
    assert schema.code == 1
    assert "HTTP 422: slug:" in schema.err
    assert not Batch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_wrong_key_is_explained(cli, server_project):
    run = cli("projects", "list", SOCIALGRID_TOKEN="sg_wrong")

    assert run.code == 1
    assert "HTTP 401" in run.err
    assert "SOCIALGRID_TOKEN" in run.err


@pytest.mark.django_db(transaction=True)
def test_configuration_problems_exit_with_status_2(cli, tmp_path):
    no_url = cli("projects", "list", SOCIALGRID_URL="")
    no_key = cli("projects", "list", SOCIALGRID_TOKEN="")
    not_http = cli("projects", "list", SOCIALGRID_URL="ftp://example.org")
    no_file = cli("versions", "upload", "mine", "square", str(tmp_path / "missing.js"))
    bad_template = cli("batches", "sweep", "p", "a", "--parameter", "x", "--start", "0",
                       "--stop", "1", "--template", "[1]")  # fmt: skip

    assert [r.code for r in (no_url, no_key, not_http, no_file, bad_template)] == [2] * 5
    assert "SOCIALGRID_URL" in no_url.err
    assert "SOCIALGRID_TOKEN" in no_key.err
    assert "cannot read" in no_file.err
    assert "JSON object" in bad_template.err


def test_an_unreachable_server_is_reported(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = io.StringIO()

    code = main(
        ["projects", "list"],
        {"SOCIALGRID_URL": f"http://127.0.0.1:{port}", "SOCIALGRID_TOKEN": "sg_x"},
        io.StringIO(),
        err,
    )

    assert code == 2
    assert "cannot reach" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_settings_are_set_at_creation_and_updated(cli, server_project):
    created = cli(
        "projects", "create", "tuned", "Tuned", "--deadline-extension", "0", "--daily-quota", "9"
    )  # fmt: skip
    updated = cli("projects", "update", "tuned", "--deadline", "120", "--max-errors", "5")
    refused = cli("projects", "update", "tuned", "--deadline", "59")
    cores = cli("apps", "update", "mine", "square", "--min-cores", "2")
    shown = json.loads(cli("--json", "projects", "show", "tuned").out)

    assert (created.code, updated.code, cores.code) == (0, 0, 0), created.err + updated.err
    assert "delay_bound 120, max_error_results 5" in updated.out
    assert refused.code == 1
    assert "delay_bound" in refused.err
    settings = (
        "max_deadline_extension",
        "daily_quota_per_core",
        "delay_bound",
        "max_error_results",
    )
    assert [shown[k] for k in settings] == [0, 9, 120, 5]
    assert server_project.apps.get().min_cores == 2
    assert json.loads(cli("--json", "apps", "list", "mine").out)[0]["min_cores"] == 2
