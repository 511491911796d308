from __future__ import annotations

import json

import pytest

from compute.dotted import resolve
from compute.examples import EXAMPLES
from compute.models import App, AppVersion
from compute.submission import MAX_INPUT_BYTES


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_names_callables_a_kernel_and_small_demo_inputs(name):
    example = EXAMPLES[name]
    assert example.name == name
    assert resolve(example.reference_path)
    assert resolve(example.assimilator_path)
    assert "export async function run(input, progress, env)" in example.kernel_source()
    inputs = example.demo_inputs()
    assert inputs
    assert all(len(json.dumps(i)) < MAX_INPUT_BYTES for i in inputs)


def test_only_mandelbrot_ships_webassembly():
    assert EXAMPLES["mandelbrot"].wasm_bytes()[:4] == b"\0asm"
    assert EXAMPLES["keysearch"].wasm_bytes() is None


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_an_app_and_version_can_be_made_from_the_registry(project_factory, name):
    example = EXAMPLES[name]
    project = project_factory()
    app = App(
        project=project,
        name=example.name,
        title=example.title,
        description=example.description,
        comparator=example.comparator,
        reference_path=example.reference_path,
        assimilator_path=example.assimilator_path,
    )
    app.full_clean()
    app.save()
    version = AppVersion.objects.create(
        app=app, version=1, kernel=example.kernel_source(), wasm=example.wasm_bytes()
    )
    assert bool(version.get_wasm_url()) == (example.wasm_path is not None)
