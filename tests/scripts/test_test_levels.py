"""The runner behind `make test`: a level passes only when its tests ran and passed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_test_levels():
    spec = importlib.util.spec_from_file_location(
        "test_levels", ROOT / "scripts" / "test_levels.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_level_that_collects_no_test_fails(capsys):
    levels = load_test_levels()

    code = levels.run("unit", ["-k", "no_test_is_called_this_zq"], set())

    assert code == levels.NO_TESTS
    assert not levels.passed(code)
    assert "=== unit: FAILED (no tests collected)" in capsys.readouterr().out


def test_a_level_whose_tests_pass_passes(capsys):
    levels = load_test_levels()

    code = levels.run("unit", [str(Path(__file__)), "-k", "helper_passes"], set())

    assert code == 0
    assert levels.passed(code)
    assert "=== unit: passed" in capsys.readouterr().out


def test_helper_passes():
    """The test the second case runs on its own."""
    assert load_test_levels().passed(0)
