from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from django.core.management import call_command

import pytest

from compute.demo import DEMO_PROJECTS, install_demo, install_example
from compute.examples import EXAMPLES
from compute.models import AppVersion, Batch, Project

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_installs_every_example_project_with_work(user_factory):
    admin = user_factory(is_superuser=True, is_staff=True)
    installed = install_demo(admin)
    assert {i.project.slug for i in installed} == set(DEMO_PROJECTS)
    for i in installed:
        assert i.batch.n_workunits == len(EXAMPLES[i.app.name].demo_inputs())
        assert i.version.kernel == EXAMPLES[i.app.name].kernel_source()
    mandelbrot = AppVersion.objects.get(app__name="mandelbrot")
    assert mandelbrot.wasm_sha256
    assert bytes(mandelbrot.wasm).startswith(b"\0asm")


def test_seeding_twice_adds_no_projects_versions_or_batches(user_factory):
    admin = user_factory(is_superuser=True, is_staff=True)
    install_demo(admin)
    install_demo(admin)
    assert Project.objects.count() == len(DEMO_PROJECTS)
    assert AppVersion.objects.count() == len(DEMO_PROJECTS)
    assert Batch.objects.count() == len(DEMO_PROJECTS)


def test_a_changed_kernel_becomes_a_new_app_version(user_factory, tmp_path):
    admin = user_factory(is_superuser=True)
    example = EXAMPLES["keysearch"]
    install_example("ks", "KS", example, admin)
    changed = tmp_path / "kernel.js"
    changed.write_text(example.kernel_source() + "\n// tuned\n")
    again = install_example("ks", "KS", replace(example, kernel_path=changed), admin)
    assert again.version.version == 2
    assert again.version.kernel.endswith("// tuned\n")


def test_seed_demo_prints_the_admin_credentials(db, capsys):
    call_command("seed_demo", "--password", "s3cret-demo")
    out = capsys.readouterr().out
    assert "username 'admin' password 's3cret-demo'" in out
    from django.contrib.auth import authenticate

    assert authenticate(username="admin", password="s3cret-demo").is_superuser


def test_seed_demo_prints_the_address_the_demo_serves_on(db, capsys, monkeypatch):
    monkeypatch.setenv("PORT", "8771")
    call_command("seed_demo", "--password", "x")
    assert "(http://127.0.0.1:8771/admin/)" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runplatform_serves_the_site_and_runs_the_sweeps(tmp_path):
    """`make demo`'s last step: one process on embedded defaults."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    # The sweeps' task lines are the evidence that they run: one setting brings them back.
    env.update(
        SOCIALGRID_VAR_DIR=str(tmp_path),
        SWEEP_FEEDER_SECONDS="0.2",
        SWEEP_DEMO_WORK_SECONDS="0.2",
        PYTHONPATH=str(ROOT),
        TASK_LOG_LEVEL="INFO",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run(
        [*manage, "seed_demo", "--password", "x"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runplatform", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    # The embedded beat's sweeps, seen by their task lines: the feeder, and the demo's
    # replenisher, which keeps the seeded projects in work (its first run submits batches).
    sweeps = ("compute.tasks.sweep_feeder", "compute.tasks.replenish_demo_work")
    try:
        body = ""
        for _ in range(100):
            try:
                body = (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                )
                break
            except OSError:
                time.sleep(0.2)
        assert "Mandelbrot@Home" in body
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read() == b"ok"
        deadline = time.monotonic() + 90
        while not all(any(s in line for line in list(lines)) for s in sweeps):
            assert server.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no sweep task lines:\n" + "".join(lines)
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        server.wait(timeout=20)
        reader.join(timeout=10)
    out = "".join(lines)
    assert "Finished server process" in out
    assert "embedded" in out


@pytest.fixture(autouse=True)
def _db(db):
    return None
