"""docs/project-owners.md, followed step by step against a live server.

The document marks its steps with HTML comments (``<!-- walkthrough: KIND [ARG] -->``):

- ``token``: the reader makes an API token on /owners/tokens/ (done here with a browser-like
  client, signed in as the owner);
- ``shell``: the next code block is run line by line: ``export NAME=value``,
  ``NAME=$(command)`` and client commands (``python -m compute.api.cli ...``), in a working
  directory; ``SOCIALGRID_URL`` and ``SOCIALGRID_TOKEN`` take the live server's address and
  the token just made instead of the placeholders;
- ``file PATH``: the next code block is saved as PATH in the working directory, which is also
  the server's import path (it stands for the server's checkout, where ``apps/`` lives);
- ``volunteers``: two volunteers compute everything queued: one runs the uploaded kernel
  under Node.js as a browser worker would, the other the app's Python reference, so the
  work validates only if the document's kernel and reference agree.

At the end the downloaded CSV must hold the reference's answer for every work unit.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

import pytest

from compute import assimilation, feeder, results, scheduler, validation
from compute.api.cli import main
from compute.dotted import resolve
from compute.models import AppVersion, Batch, Project
from compute.states import BatchState

DOC = Path(settings.BASE_DIR) / "docs" / "project-owners.md"
RUNNER = Path(settings.BASE_DIR) / "tests" / "examples" / "run_kernel.mjs"
STEP = re.compile(
    r"<!-- walkthrough: (?P<kind>[a-z]+)(?: (?P<arg>\S+))? -->\n"
    r"(?:[ \t]*\n)*(?:```[^\n]*\n(?P<code>.*?)```)?",
    re.S,
)
CLIENT = ["python", "-m", "compute.api.cli"]


@dataclass
class Step:
    kind: str
    arg: str | None
    code: str | None


def read_steps(text: str) -> list[Step]:
    steps = [Step(m["kind"], m["arg"], m["code"]) for m in STEP.finditer(text)]
    for step in steps:
        needs_code = step.kind in {"shell", "file"}
        assert step.kind in {"shell", "file", "token", "volunteers"}, step
        assert (step.code is not None) == needs_code, f"{step.kind} step: code block {step}"
        assert (step.arg is not None) == (step.kind == "file"), step
    return steps


def commands(code: str) -> list[str]:
    """Logical lines of a shell block: continuations joined, blanks and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


@dataclass
class Walk:
    workdir: Path
    overrides: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    def expand(self, text: str) -> str:
        def value(m: re.Match) -> str:
            name = m[1] or m[2]
            assert name in self.env, f"${name} is used before it is set"
            return self.env[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)

    def client(self, command: str) -> str:
        args = shlex.split(self.expand(command))
        assert args[:3] == CLIENT, f"the walkthrough runs only the client, not {command!r}"
        out, err = io.StringIO(), io.StringIO()
        code = main(args[3:], self.env, out, err)
        assert code == 0, f"{command!r} failed: {err.getvalue()}"
        self.ran.append(" ".join(args[3:5]))
        return out.getvalue()

    def shell(self, code: str) -> None:
        for command in commands(code):
            if m := re.fullmatch(r"export (\w+)=(\S+)", command):
                self.env[m[1]] = self.overrides.get(m[1], self.expand(m[2]))
            elif m := re.fullmatch(r"(\w+)=\$\((.*)\)", command):
                self.env[m[1]] = self.client(m[2]).strip()
            else:
                self.client(command)

    def file(self, path: str, code: str) -> None:
        target = self.workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")


def run_kernel(node: str, kernel: str, inputs: list, workdir: Path) -> list:
    path = workdir / "kernel-under-test.mjs"
    path.write_text(kernel, encoding="utf-8")
    request = json.dumps({"kernel": str(path), "function": "run", "wasm": None, "inputs": inputs})
    done = subprocess.run(
        [node, "--experimental-vm-modules", "--no-warnings", str(RUNNER)],
        input=request,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)["results"]
    assert all("output" in o for o in outcomes), outcomes
    return [o["output"] for o in outcomes]


def compute_everything(project: Project, hosts: list, node: str, workdir: Path) -> None:
    """Rounds of: lease, compute (host 0 the kernel, host 1 the reference), report, validate,
    assimilate; until no batch of the project is in progress."""
    for _ in range(20):
        if not project.batches.filter(state=BatchState.IN_PROGRESS).exists():
            return
        feeder.refill_all()
        for i, host in enumerate(hosts):
            tasks = scheduler.lease_replicas(host, 8)
            if not tasks:
                continue
            if i == 0:
                kernel = AppVersion.objects.get(kernel_sha256=tasks[0].kernel_sha256).kernel
                assert all(t.kernel_sha256 == tasks[0].kernel_sha256 for t in tasks)
                outputs = run_kernel(node, kernel, [t.input for t in tasks], workdir)
            else:
                reference = resolve(project.apps.get(name=tasks[0].app_name).reference_path)
                outputs = [reference(t.input) for t in tasks]
            for task, output in zip(tasks, outputs, strict=True):
                receipt = results.record_result(
                    host, task.replica_id, task.lease_token, output, 1.0
                )
                assert receipt.accepted, receipt
        validation.validate_pending()
        assimilation.assimilate_pending()
    raise AssertionError("the volunteers did not finish the batches")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "apps" or m.startswith("apps.")]:
        del sys.modules[name]
    resolve.cache_clear()


def test_the_document_marks_its_steps_in_order():
    kinds = [s.kind for s in read_steps(DOC.read_text(encoding="utf-8"))]

    assert kinds[0] == "token"
    assert kinds.index("volunteers") > kinds.index("file")
    assert kinds[-1] == "shell"
    assert kinds.count("shell") >= 5


@pytest.mark.django_db(transaction=True)
def test_following_the_walkthrough_gets_results_from_volunteers(
    client, live_server, owner, host_factory, workdir
):
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (`node`) is needed to run the walkthrough's kernel")
    steps = read_steps(DOC.read_text(encoding="utf-8"))
    walk = Walk(workdir, {"SOCIALGRID_URL": live_server.url})

    for step in steps:
        if step.kind == "token":
            client.force_login(owner)
            page = client.post("/owners/tokens/", {"name": "walkthrough"}, follow=True)
            walk.overrides["SOCIALGRID_TOKEN"] = re.search(
                r'id="new-key-value"[^>]*value="(sg_[^"]+)"', page.content.decode()
            )[1]
        elif step.kind == "shell":
            walk.shell(step.code)
        elif step.kind == "file":
            walk.file(step.arg, step.code)
        else:
            project = Project.objects.get(owner=owner)
            hosts = [host_factory(project) for _ in range(2)]
            compute_everything(project, hosts, node, workdir)

    # Every kind of call the document promises was made, with the real key.
    assert walk.env["SOCIALGRID_TOKEN"].startswith("sg_")
    for command in ("projects create", "apps create", "versions upload", "batches sweep",
                    "batches submit", "batches wait", "batches results"):  # fmt: skip
        assert command in walk.ran
    assert all(b.state == BatchState.COMPLETED for b in Batch.objects.all())
    assert Batch.objects.count() == 3
    # The zip sweep: the i-th value of each parameter in the i-th work unit.
    zipped = Batch.objects.get(name="three widths").workunits.order_by("id")
    assert [wu.input for wu in zipped] == [
        {"lo": 20001, "width": 250},
        {"lo": 21001, "width": 500},
        {"lo": 22001, "width": 1000},
    ]

    reference = resolve("apps.collatz.run")
    rows = list(csv.DictReader((workdir / "collatz.csv").open(encoding="utf-8")))
    assert len(rows) == Batch.objects.get(id=int(walk.env["BATCH"])).n_workunits == 10
    for row in rows:
        assert json.loads(row["output"]) == reference(json.loads(row["input"]))
    assert json.loads(rows[0]["output"]) == {"lo": 1, "width": 1000, "longest": 871, "steps": 178}
    dashboard = client.get("/owners/projects/collatz-search/")
    assert dashboard.status_code == 200
