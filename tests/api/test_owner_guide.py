"""What docs/project-owners.md tells an owner beyond the walkthrough holds: the demo's
account, the command that runs a kernel under Node.js, and when the server's processes
must restart after the apps' Python code changed."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

import pytest

from compute.dotted import resolve

DOC = Path(settings.BASE_DIR) / "docs" / "project-owners.md"
RUNNER = Path(settings.BASE_DIR) / "tests" / "examples" / "run_kernel.mjs"


def guide() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.mark.django_db
def test_the_guide_names_the_account_the_demo_seeding_prints():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    [line] = [x for x in out.getvalue().splitlines() if "admin account" in x]
    printed = re.match(r"admin account created: username '(\w+)' password '", line)
    assert printed, line
    assert printed[0] in guide()
    assert f"user name is `{printed[1]}`" in guide()


def test_the_documented_command_runs_a_kernel_under_node(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (`node`) is needed to run the documented command")
    text = guide()
    block = re.search(r"<!-- kernel-check -->\n```sh\n(.*?)```", text, re.S)
    assert block, "the guide has no kernel-check block"
    command = re.sub(r"\\\n\s*", " ", block[1]).strip()
    kernel = re.search(r"<!-- walkthrough: file collatz.js -->\n```js\n(.*?)```", text, re.S)[1]
    # The command runs from the top of a checkout, next to the kernel it names.
    (tmp_path / "collatz.js").write_text(kernel, encoding="utf-8")
    (tmp_path / "tests" / "examples").mkdir(parents=True)
    shutil.copy(RUNNER, tmp_path / "tests" / "examples" / RUNNER.name)

    done = subprocess.run(
        ["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)["results"]
    assert first["output"] == {"lo": 1, "width": 1000, "longest": 871, "steps": 178}
    assert first["progress"][-1] == 1
    assert second["output"]["lo"] == 1001


def test_a_process_keeps_the_apps_code_it_imported_so_workers_restart(tmp_path, monkeypatch):
    """The guide says a change to the apps' Python code reaches a process only when it
    restarts: a process that resolved a path keeps calling the code it imported."""
    package = tmp_path / "apps_restart_check"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "ref.py").write_text("def run(data):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert resolve("apps_restart_check.ref.run")({}) == 1
        (package / "ref.py").write_text(
            "def run(data):\n    return 2\n\ndef new(data):\n    pass\n"
        )

        assert resolve("apps_restart_check.ref.run")({}) == 1
        with pytest.raises(ImportError, match="has no attribute 'new'"):
            resolve("apps_restart_check.ref.new")
    finally:
        for name in [m for m in sys.modules if m.startswith("apps_restart_check")]:
            del sys.modules[name]
        resolve.cache_clear()

    section = guide().split("### When the server's processes must restart", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert "restart the **Celery workers**" in section
    assert "restart the **web processes** too when you *added* a function" in section
    assert "make demo" in section
