"""Sweeps of several parameters, a grid (every combination) or a zip (lists in parallel), on
every way in: the API, the command-line client and ``manage.py submit_batch``. A bad sweep
is refused with its reason, and nothing is created."""

from __future__ import annotations

import io
import re

from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

import pytest

from compute.api.cli import main, parse_vary
from compute.models import Batch, WorkUnit
from compute.submission import MAX_BATCH_WORKUNITS, sweep_inputs
from tests.api.conftest import body

SWEEP = "/api/projects/mine/apps/square/sweeps"
RANGES = {  # a range [lo, hi) per work unit: two parameters that move together
    "lo": {"start": 1, "stop": 3001, "step": 1000},
    "hi": {"start": 1001, "stop": 4001, "step": 1000},
}


def inputs() -> list:
    return list(WorkUnit.objects.order_by("id").values_list("input", flat=True))


# --- the rule --------------------------------------------------------------------------------


def test_a_grid_is_every_combination_the_first_parameter_slowest():
    made = sweep_inputs({"k": 0}, {"a": [1, 2], "b": ["x", "y", "z"]}, "grid")

    assert made == [
        {"k": 0, "a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")
    ]  # fmt: skip


def test_a_zip_takes_the_lists_in_parallel():
    made = sweep_inputs({"width": 1000}, RANGES, "zip")

    assert made == [
        {"width": 1000, "lo": 1, "hi": 1001},
        {"width": 1000, "lo": 1001, "hi": 2001},
        {"width": 1000, "lo": 2001, "hi": 3001},
    ]


def test_a_range_and_a_list_mix_and_the_step_defaults_to_one():
    made = sweep_inputs({}, {"n": {"start": 0, "stop": 0.3, "step": 0.1}, "s": [7, 8, 9]}, "zip")

    assert made == [{"n": 0, "s": 7}, {"n": 0.1, "s": 8}, {"n": 0.2, "s": 9}]
    assert sweep_inputs({}, {"n": {"start": 3, "stop": 5}}) == [{"n": 3}, {"n": 4}]


@pytest.mark.parametrize(
    ("parameters", "mode", "message"),
    [
        ({"a": [1]}, "diagonal", "mode must be 'grid' or 'zip', not 'diagonal'"),
        ({"a": [1, 2], "b": [1, 2, 3]}, "zip", "zip needs lists of the same length: a has 2"),
        (
            {"a": {"start": 0, "stop": 1001}, "b": {"start": 0, "stop": 1000}},
            "grid",
            f"the sweep makes 1,001,000 work units; a batch may have at most "
            f"{MAX_BATCH_WORKUNITS:,}",
        ),
        ({}, "grid", "at least one parameter"),
        ({"a": []}, "grid", "the list is empty"),
        ({"a": {"start": 0, "stop": 5, "step": 0}}, "grid", "step must not be zero"),
        ({"a": 5}, "grid", "a list of values or a range"),
    ],
)
def test_a_bad_sweep_says_why(parameters, mode, message):
    with pytest.raises(ValidationError, match=message):
        sweep_inputs({}, parameters, mode)


# --- the API ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_sweeps_a_range_of_two_fields_as_a_zip(api, owned_project):
    response = api.post_json(SWEEP, {"template": {"k": 1}, "parameters": RANGES, "mode": "zip"})

    assert response.status_code == 201, response.content
    assert body(response)["n_workunits"] == 3
    assert inputs() == [{"k": 1, "lo": lo, "hi": lo + 1000} for lo in (1, 1001, 2001)]


@pytest.mark.django_db
def test_the_api_sweeps_a_grid_of_lists_and_ranges(api, owned_project):
    parameters = {"x": {"start": 0, "stop": 2}, "seed": [10, 20, 30]}

    response = api.post_json(SWEEP, {"parameters": parameters})

    assert response.status_code == 201, response.content
    assert inputs() == [{"x": x, "seed": s} for x in (0, 1) for s in (10, 20, 30)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sweep", "status", "message"),
    [
        ({"parameters": {"a": [1, 2], "b": [1]}, "mode": "zip"}, 400, "same length"),
        (
            {"parameters": {"a": {"start": 0, "stop": 2000}, "b": {"start": 0, "stop": 501}}},
            400,
            "the sweep makes 1,002,000 work units; a batch may have at most 1,000,000",
        ),
        ({"parameters": {"a": [1]}, "parameter": "b", "start": 0, "stop": 1}, 400, "not both"),
        ({"template": {"k": 1}}, 400, "a sweep needs parameter"),
        ({"parameters": {"a": []}}, 400, "the list is empty"),
        ({"parameters": {"a": [1]}, "mode": "diagonal"}, 422, "'grid' or 'zip'"),
    ],
)
def test_the_api_refuses_a_bad_sweep_and_creates_nothing(
    api, owned_project, sweep, status, message
):
    response = api.post_json(SWEEP, sweep)

    assert response.status_code == status, response.content
    assert message in str(body(response)["detail"])
    assert not Batch.objects.exists()
    assert not WorkUnit.objects.exists()


def test_the_sweep_schema_names_the_modes(client):
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["SweepIn"]

    assert schema["properties"]["mode"]["enum"] == ["grid", "zip"]
    assert "parameters" in schema["properties"]


# --- the command-line client -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("lo=1:3001:1000", ("lo", {"start": 1, "stop": 3001, "step": 1000})),
        ("x=0:1", ("x", {"start": 0, "stop": 1})),
        ("x=-0.5:0.5:0.25", ("x", {"start": -0.5, "stop": 0.5, "step": 0.25})),
        ('seed=[1, 2, "three"]', ("seed", [1, 2, "three"])),
    ],
)
def test_the_client_reads_a_parameter(text, parsed):
    assert parse_vary(text) == parsed


@pytest.mark.parametrize("text", ["lo", "lo=", "=1:2", "lo=1", "lo=a:b", "lo=[1,", 'lo={"a": 1}'])
def test_the_client_refuses_a_parameter_it_cannot_read(text):
    with pytest.raises(ValueError, match=r"write |not a JSON list|not START:STOP"):
        parse_vary(text)


@pytest.fixture
def cli(live_server, owner, key_for):
    env = {"SOCIALGRID_URL": live_server.url, "SOCIALGRID_TOKEN": key_for(owner)}

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(args), env, out, err)
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.mark.django_db(transaction=True)
def test_the_client_submits_a_zip_and_a_grid(cli, owned_project):
    code, out, err = cli(
        "batches", "sweep", "mine", "square", "--template", '{"k": 1}', "--mode", "zip",
        "--vary", "lo=1:3001:1000", "--vary", "hi=1001:4001:1000",
    )  # fmt: skip
    assert code == 0, err
    assert Batch.objects.get(id=int(out)).n_workunits == 3
    assert inputs() == [{"k": 1, "lo": lo, "hi": lo + 1000} for lo in (1, 1001, 2001)]

    code, out, err = cli(
        "batches", "sweep", "mine", "square", "--vary", "x=0:2", "--vary", "s=[10, 20]"
    )  # fmt: skip
    assert code == 0, err
    grid = Batch.objects.get(id=int(out)).workunits.order_by("id").values_list("input", flat=True)
    assert list(grid) == [
        {"x": 0, "s": 10},
        {"x": 0, "s": 20},
        {"x": 1, "s": 10},
        {"x": 1, "s": 20},
    ]


@pytest.mark.django_db(transaction=True)
def test_the_client_reports_a_refused_sweep_and_nothing_is_created(cli, owned_project):
    code, _, err = cli(
        "batches", "sweep", "mine", "square", "--mode", "zip", "--vary", "a=[1, 2]",
        "--vary", "b=[1, 2, 3]",
    )  # fmt: skip

    assert code == 1
    assert "zip needs lists of the same length: a has 2, b has 3" in err
    assert not Batch.objects.exists()


def test_the_client_refuses_an_unknown_mode_and_unreadable_parameters(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["batches", "sweep", "p", "a", "--mode", "diagonal", "--vary", "a=[1]"], {})
    assert exited.value.code == 2
    assert "invalid choice: 'diagonal'" in capsys.readouterr().err

    env = {"SOCIALGRID_URL": "http://127.0.0.1:9", "SOCIALGRID_TOKEN": "sg_x"}
    err = io.StringIO()
    code = main(["batches", "sweep", "p", "a", "--vary", "lo=1"], env, io.StringIO(), err)
    assert code == 2
    assert "lo: write START:STOP[:STEP] or a JSON list" in err.getvalue()
    err = io.StringIO()
    assert main(["batches", "sweep", "p", "a"], env, io.StringIO(), err) == 2
    assert "say what varies" in err.getvalue()


# --- manage.py submit_batch ------------------------------------------------------------------


def submit(*args: str) -> str:
    out = io.StringIO()
    call_command("submit_batch", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_submits_a_zip_sweep(owned_project):
    out = submit(
        "mine", "square", "--template", '{"k": 1}', "--mode", "zip",
        "--vary", "lo=1:3001:1000", "--vary", "hi=1001:4001:1000",
    )  # fmt: skip

    batch = Batch.objects.get()
    assert out.strip() == f"batch {batch.id}: 3 work units"
    assert inputs() == [{"k": 1, "lo": lo, "hi": lo + 1000} for lo in (1, 1001, 2001)]


@pytest.mark.django_db
def test_the_command_submits_a_grid_sweep_by_default(owned_project):
    submit("mine", "square", "--vary", "a=[1, 2]", "--vary", "b=0:3")

    assert inputs() == [{"a": a, "b": b} for a in (1, 2) for b in (0, 1, 2)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "diagonal", "--vary", "a=[1]"], "mode must be 'grid' or 'zip'"),
        (["--mode", "zip", "--vary", "a=[1, 2]", "--vary", "b=[1]"], "same length"),
        (["--vary", "a=0:1001", "--vary", "b=0:1000"], "at most 1,000,000"),
        (["--vary", "a=1"], "write START:STOP[:STEP]"),
        ([], "give a JSON Lines file or --vary"),
    ],
)
def test_the_command_refuses_a_bad_sweep_and_creates_nothing(owned_project, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        submit("mine", "square", *args)

    assert not Batch.objects.exists()
    assert not WorkUnit.objects.exists()
