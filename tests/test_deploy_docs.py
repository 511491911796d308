"""One production shape: the Procfile holds the command of each process, the deployment guide
gives those commands verbatim, and the bench starts exactly those commands."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import deployment, run
from socialgrid import procfile

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "deploy.md"
SCRIPTS = str(Path(sys.executable).parent)


def test_the_procfile_has_the_three_process_types():
    types = procfile.read()
    assert list(types) == ["web", "worker", "beat"]
    assert all(command.startswith("exec ") for command in types.values())
    assert "socialgrid.asgi:application" in types["web"]


def test_every_procfile_command_is_in_the_deployment_guide_verbatim():
    guide = GUIDE.read_text()
    for name, command in procfile.read().items():
        assert f"{name}: {command}\n" in guide, f"the Procfile's {name} line"
        assert f"\n{command}\n" in guide, f"the {name} command on a line of its own"


def test_the_guide_starts_no_server_process_with_a_command_of_its_own():
    commands = set(procfile.read().values())
    starts = re.compile(r"\b(uvicorn socialgrid\.asgi|celery -A socialgrid (worker|beat))\b")
    lines = [line.strip() for line in GUIDE.read_text().splitlines() if starts.search(line)]
    assert lines
    for line in lines:
        assert line.split(": ", 1)[-1] in commands, line


def test_the_readme_points_to_the_deployment_guide():
    readme = (ROOT / "README.md").read_text()
    assert "`docs/deploy.md`" in readme
    assert "celery -A socialgrid" not in readme


class FakePopen:
    """Records what would have been started."""

    started: list[tuple[list[str], dict[str, str]]] = []

    def __init__(self, argv, *, env, **kwargs) -> None:
        self.args = list(argv)
        self.pid = 2**22 + 1 + len(self.started)  # past pid_max: no such process
        self.started.append((self.args, env))

    def poll(self) -> None:
        return None


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    FakePopen.started = []
    monkeypatch.setattr(deployment.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(deployment.Deployment, "wait_ready", lambda self, p, deadline=None: None)
    monkeypatch.setenv("SWEEP_VALIDATOR_SECONDS", "99")  # inherited: must not reach a process
    monkeypatch.setenv("PORT", "1")
    return FakePopen.started


def _deployment(tmp_path: Path, argv: list[str]) -> deployment.Deployment:
    args = run.parse_args(argv)
    config = run.make_config(args, tmp_path)
    config.out_dir = tmp_path
    return deployment.Deployment(config)


def test_the_bench_starts_each_process_with_the_procfile_command(recorded, tmp_path):
    dep = _deployment(tmp_path, ["--asgi", "2", "--workers", "2", "--port-base", "9100"])
    try:
        dep.start()
    finally:
        for p in dep.processes:
            p.stream.close()

    argvs = [argv for argv, _ in recorded]
    expected = [procfile.argv("web")] * 2 + [procfile.argv("worker")] * 2
    assert argvs == [*expected, procfile.argv("beat")]
    assert all(argv[:2] == ["sh", "-c"] for argv in argvs)
    envs = [env for _, env in recorded]
    assert [(e["HOST"], e["PORT"]) for e in envs[:2]] == [
        ("127.0.0.1", "9100"),
        ("127.0.0.1", "9101"),
    ]
    assert [e["WORKER"] for e in envs[2:4]] == ["1", "2"]
    assert envs[4]["BEAT_SCHEDULE"] == str(tmp_path / "beat-schedule")
    for env in envs:
        # uvicorn and celery are this environment's, whatever the caller's PATH.
        assert env["PATH"].split(os.pathsep)[0] == SCRIPTS
        # A run uses the settings a deployment has: no sweep of the bench's own.
        assert not [name for name in env if name.startswith("SWEEP_")]
    assert "PORT" not in envs[2]
    assert "PORT" not in envs[4]
    details = [w.detail for w in dep.watched()]
    assert details[0] == "Procfile web, PORT=9100"
    assert details[2] == "Procfile worker, WORKER=1"
    assert details[4] == "Procfile beat"


def test_a_sweep_given_to_the_bench_is_applied_and_shown_as_a_deviation(recorded, tmp_path):
    dep = _deployment(tmp_path, ["--asgi", "1", "--workers", "1", "--sweep", "validator=5"])
    assert dep.env()["SWEEP_VALIDATOR_SECONDS"] == "5.0"
    assert dep.config.sweeps == {"validator": 5.0}


def test_the_bench_has_no_worker_options_of_its_own():
    with pytest.raises(SystemExit):
        run.parse_args(["--pool", "prefork"])


def test_a_restarted_process_gets_the_same_command_and_variables(recorded, tmp_path):
    dep = _deployment(tmp_path, ["--asgi", "1", "--workers", "1", "--port-base", "9200"])
    try:
        dep.start()
        web = dep.processes[0]
        again = dep.respawn(web, "asgi-1+")
    finally:
        for p in dep.processes:
            p.stream.close()
    assert again.argv == procfile.argv("web")
    assert recorded[-1][1]["PORT"] == "9200"
    assert again.port == 9200


def test_reading_a_procfile(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text('# comment\n\nweb: exec uvicorn x:app --port "$PORT"\nbeat:exec b\n')
    assert procfile.read(path) == {"web": 'exec uvicorn x:app --port "$PORT"', "beat": "exec b"}
    assert procfile.argv("beat", path) == ["sh", "-c", "exec b"]
    with pytest.raises(procfile.ProcfileError, match="no 'worker'"):
        procfile.argv("worker", path)
    path.write_text("web: a\nweb: b\n")
    with pytest.raises(procfile.ProcfileError, match="twice"):
        procfile.read(path)
    path.write_text("just a command\n")
    with pytest.raises(procfile.ProcfileError, match="not 'type: command'"):
        procfile.read(path)


def test_the_web_command_with_another_application_keeps_every_option():
    web = procfile.line("web")
    other = procfile.web_argv_for("bench.harness.ceiling:application")[-1]
    assert other == web.replace(procfile.WEB_APP, "bench.harness.ceiling:application")
    assert procfile.WEB_APP not in other


def test_the_environment_puts_this_interpreters_scripts_first():
    env = procfile.environment({"PATH": f"/usr/bin{os.pathsep}{SCRIPTS}", "A": "1"}, PORT=8001)
    assert env["PATH"].split(os.pathsep) == [SCRIPTS, "/usr/bin"]
    assert (env["A"], env["PORT"]) == ("1", "8001")


def test_running_a_process_type_becomes_its_command(monkeypatch):
    calls = []
    monkeypatch.setattr(procfile.os, "execvpe", lambda *a: calls.append(a))
    monkeypatch.setenv("WORKER", "3")
    procfile.main(["worker"])
    ((file, argv, env),) = calls
    assert (file, argv) == ("sh", procfile.argv("worker"))
    assert env["WORKER"] == "3"
    assert env["PATH"].split(os.pathsep)[0] == SCRIPTS
    with pytest.raises(SystemExit, match="usage"):
        procfile.main(["nothing"])


def test_the_pythons_django_supports_may_install_the_project():
    """Django 5.2 runs on 3.10 to 3.13; the project supports 3.11 to 3.13 (what Debian 12 and
    current Ubuntu ship); constraints.txt was installed and the suite run on each."""
    import tomllib

    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = SpecifierSet(project["requires-python"])
    assert [v for v in ("3.10", "3.11", "3.12", "3.13") if v in allowed] == ["3.11", "3.12", "3.13"]


# --- The first steps of a production site, as the guide gives them --------------------------


def _section(title: str) -> str:
    guide = GUIDE.read_text()
    start = guide.index(title)
    end = guide.find("\n## ", start + len(title))
    return guide[start : end if end > 0 else None]


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def _documented_environment(var_dir: Path, static_root: Path) -> dict[str, str]:
    """The guide's /etc/socialgrid/env, with a real secret and this machine's embedded
    database and channel layer in place of PostgreSQL and Redis."""
    [block] = [
        b
        for b in _code_blocks(_section("## 4. The environment"))
        if b.startswith("# /etc/socialgrid/env")
    ]
    env = dict(re.findall(r"^([A-Z_]+)=(\S+)$", block, re.M))
    assert env["SOCIALGRID_ENV"] == "production"
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name)
    return {
        **env,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "STATIC_ROOT": str(static_root),
        "SOCIALGRID_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "socialgrid.settings",
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
    }


def _run(argv: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert done.returncode == 0, f"{argv}: {done.stderr[-3000:]}"
    return done


# What a browser and the guide's curl see: run in a process with the production settings.
PROBE = """
import json, re, sys
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client

headers = json.loads(sys.argv[1])
client = Client(raise_request_exception=False)
host = headers.get("HTTP_HOST", "")
answers = {}
for name, extra in (("plain", {"HTTP_HOST": host}), ("proxied", headers)):
    for path in ("/healthz", "/accounts/login/"):
        r = client.get(path, **extra)
        page = r.content.decode(errors="replace")
        answers[f"{name} {path}"] = {
            "status": r.status_code,
            "location": r.get("Location", ""),
            "static": re.findall(r'/static/[^"]+', page),
            "secure": r.wsgi_request.is_secure(),
        }
answers["superusers"] = list(
    get_user_model().objects.filter(is_superuser=True).values_list("username", flat=True)
)
print(json.dumps(answers))
"""


def _curl_headers() -> dict[str, str]:
    """The headers of the guide's curl to a web process before the proxy is set up."""
    [line] = [
        line for line in GUIDE.read_text().splitlines()
        if line.startswith("curl ") and "http://127.0.0.1:8001/healthz" in line
    ]  # fmt: skip
    argv = shlex.split(line)
    pairs = [argv[i + 1].split(": ", 1) for i, arg in enumerate(argv) if arg == "-H"]
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in pairs}


def _probe(env: dict[str, str]) -> dict:
    done = _run([sys.executable, "-c", PROBE, json.dumps(_curl_headers())], env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_guide_says_how_a_production_site_starts():
    steps = _section("## 5. The database, the static files and the first account")
    [block] = _code_blocks(steps)
    commands = [line.split("manage.py ", 1)[1] for line in block.splitlines() if line]
    assert commands == [
        "migrate --noinput", "collectstatic --noinput", "createsuperuser", "check --deploy"
    ]  # fmt: skip
    assert "Missing staticfiles manifest entry" in steps
    assert "DJANGO_SUPERUSER_PASSWORD" in steps
    proxy = _section("## 8. TLS and the proxy")
    assert 'SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")' in proxy
    assert "`socialgrid/settings.py` with `SOCIALGRID_ENV=production`" in proxy
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in proxy
    assert "SOCIALGRID_URL=https://grid.example.org" in proxy


def test_the_documented_web_command_is_what_uvicorn_accepts():
    from importlib import import_module

    from uvicorn.importer import import_from_string

    # uvicorn's own command (the package's name ``main`` is the function, not the module).
    cli = import_module("uvicorn.main").main

    web = _section("### web")
    [command] = [line for line in _code_blocks(web)[0].splitlines() if line]
    # The shell's ${NAME:-default} as the shell would expand it with nothing set.
    argv = shlex.split(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", command))
    assert argv[:2] == ["exec", "uvicorn"]

    context = cli.make_context("uvicorn", argv[2:])

    params = context.params
    assert params["app"] == "socialgrid.asgi:application"
    assert (params["host"], params["port"]) == ("127.0.0.1", 8000)
    assert params["access_log"] is False
    # The server's WebSocket pings keep idle sockets alive (settings.PROTOCOL["PING_SECONDS"]).
    assert params["ws_ping_interval"] == params["ws_ping_timeout"] == 30.0
    assert params["timeout_graceful_shutdown"] == 5
    assert callable(import_from_string(params["app"]))


def test_the_documented_steps_make_a_production_site_that_serves_pages(tmp_path):
    """migrate, then a page before and after collectstatic, createsuperuser and check
    --deploy, each as the guide writes it, with the guide's production environment; and the
    guide's curl to a web process before the proxy is answered, plain HTTP redirected."""
    env = _documented_environment(tmp_path / "var", tmp_path / "static")
    [block] = _code_blocks(_section("## 5. The database, the static files and the first account"))
    steps = {}
    for line in filter(None, block.splitlines()):
        argv = shlex.split(line)
        assert argv[:2] == [".venv/bin/python", "manage.py"], line
        steps[argv[2]] = [sys.executable, *argv[1:]]

    _run(steps["migrate"], env)
    before = _probe(env)
    _run(steps["collectstatic"], env)
    admin = {"DJANGO_SUPERUSER_USERNAME": "root", "DJANGO_SUPERUSER_EMAIL": "root@example.org"}
    admin["DJANGO_SUPERUSER_PASSWORD"] = secrets.token_urlsafe(16)
    _run([*steps["createsuperuser"], "--noinput"], {**env, **admin})
    _run(steps["check"], env)
    after = _probe(env)

    # Without the collected files, pages fail on the manifest; with them they are served.
    assert before["proxied /accounts/login/"]["status"] == 500
    page = after["proxied /accounts/login/"]
    assert page["status"] == 200
    assert page["static"]
    assert all(re.search(r"\.[0-9a-f]{12}\.(css|js|svg|png|ico)$", url) for url in page["static"])
    for url in page["static"]:
        relative = url.removeprefix("/static/")
        assert (tmp_path / "static" / relative).is_file(), url
    # The guide's curl counts as HTTPS through the proxy header; plain HTTP is redirected.
    assert after["proxied /healthz"]["status"] == 200
    assert after["proxied /healthz"]["secure"] is True
    plain = after["plain /healthz"]
    assert (plain["status"], plain["secure"]) == (301, False)
    assert plain["location"].startswith("https://")
    assert after["superusers"] == ["root"]
