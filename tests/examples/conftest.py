"""Running the browser kernels under Node.js.

Node is a requirement of these tests, not an optional extra: without it they fail and say
so, because a skipped comparison would let a kernel drift from its reference unseen.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compute.examples import EXAMPLES

RUNNER = Path(__file__).with_name("run_kernel.mjs")


@dataclass
class KernelRunner:
    node: str

    def results(
        self, app: str, inputs: list[Any], *, wasm: bool = False, function: str = "run"
    ) -> list[dict[str, Any]]:
        example = EXAMPLES[app]
        wasm_path = example.wasm_path if wasm else None
        return self.results_of(example.kernel_path, inputs, wasm_path, function)

    def results_of(
        self, kernel: Path, inputs: list[Any], wasm: Path | None = None, function: str = "run"
    ) -> list[dict[str, Any]]:
        request = {
            "kernel": str(kernel),
            "function": function,
            "wasm": str(wasm) if wasm else None,
            "inputs": inputs,
        }
        done = subprocess.run(
            [self.node, "--experimental-vm-modules", "--no-warnings", str(RUNNER)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"node {RUNNER.name} failed:\n{done.stderr}")
        return json.loads(done.stdout)["results"]

    def outputs(self, app: str, inputs: list[Any], **kwargs: Any) -> list[Any]:
        results = self.results(app, inputs, **kwargs)
        errors = [r["error"] for r in results if "error" in r]
        assert not errors, f"the kernel raised: {errors}"
        return [r["output"] for r in results]


@pytest.fixture(scope="session")
def kernels() -> KernelRunner:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is not installed (no `node` on PATH): the example kernel tests run the "
            "browser kernels under Node 18 or later. Install it, e.g. `apt-get install nodejs`."
        )
    return KernelRunner(node)
