"""The browser client's unit tests (``tests/js/*.test.mjs``), run by Node's test runner.

Node is a requirement here as for the kernel tests: without it these fail and say so, since
a skipped run would let the volunteer client break unseen. One pytest test per file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FILES = sorted(HERE.glob("*.test.mjs"))
# The client's modules are plain .js files without a package.json saying "module": Node
# recognises them as ES modules by their syntax from 20.10 on (with this flag).
MINIMUM_NODE = (20, 10)


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is not installed (no `node` on PATH): the browser client's unit tests run "
            "under Node 20.10 or later. Install it, e.g. `apt-get install nodejs`."
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    found = tuple(int(part) for part in re.findall(r"\d+", version.stdout)[:2])
    if found < MINIMUM_NODE:
        pytest.fail(f"Node {version.stdout.strip()} is too old: these tests need 20.10 or later.")
    return node


def test_there_are_javascript_tests():
    assert FILES, f"no *.test.mjs files in {HERE}"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_the_javascript_tests_pass(node, path):
    done = subprocess.run(
        [node, "--experimental-detect-module", "--test", "--test-reporter=spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=HERE,
    )
    assert done.returncode == 0, f"node --test {path.name} failed:\n{done.stdout}\n{done.stderr}"
