from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

import pytest

from socialgrid.env import envbool, envint, parse_database_url

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k" * 50


def load_settings(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly this environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOCIALGRID", "DATABASE", "REDIS", "DEBUG", "SECRET"))
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="socialgrid.settings", PYTHONPATH=str(ROOT))
    code = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER, "
        "settings.CHANNEL_LAYERS['default']['BACKEND'], settings.COMPUTE['FEEDER_BACKEND'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, cwd=ROOT
    )


def test_the_defaults_run_embedded():
    out = load_settings()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "channels.layers.InMemoryChannelLayer",
        "local",
    ]


def test_database_and_redis_urls_switch_to_the_services():
    out = load_settings(DATABASE_URL="postgres://u:p@db:5432/sg", REDIS_URL="redis://r:6379/0")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "django.db.backends.postgresql",
        "False",
        "socialgrid.channel_layer.BlockingPoolChannelLayer",
        "redis",
    ]


def test_production_refuses_the_development_secret_key():
    out = load_settings(SOCIALGRID_ENV="production")
    assert out.returncode != 0
    assert "SECRET_KEY must be set" in out.stderr


def test_production_refuses_debug():
    out = load_settings(SOCIALGRID_ENV="production", SECRET_KEY=STRONG_KEY, DEBUG="1")
    assert out.returncode != 0
    assert "DEBUG must be off" in out.stderr


def test_production_starts_with_a_real_key_and_debug_off():
    out = load_settings(
        SOCIALGRID_ENV="production", SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS="sg.example"
    )
    assert out.returncode == 0, out.stderr


def test_the_deployment_checks_pass_in_production():
    """``manage.py check --deploy`` with production settings: HTTPS redirect, HSTS with
    preload, secure cookies, a strong key; any warning fails."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOCIALGRID", "DATABASE", "REDIS", "DEBUG", "SECRET", "SECURE"))
    }
    clean.update(
        SOCIALGRID_ENV="production",
        SECRET_KEY="x9$Lq2!vR7#mT4@pW8^zK3&nB6*cY1%hJ5(dF0)gS-uE+aQ_oI=lM~",
        ALLOWED_HOSTS="sg.example",
        SOCIALGRID_VAR_DIR=str(ROOT / "var"),
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=clean,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "System check identified no issues" in out.stdout


def test_a_bad_value_names_its_variable():
    out = load_settings(FEEDER_BATCH="many")
    assert out.returncode != 0
    assert "FEEDER_BATCH must be an integer" in out.stderr


def test_parse_database_url_understands_postgres_and_sqlite():
    pg = parse_database_url("postgres://me:s%40cret@127.0.0.1:5433/sg?sslmode=require")
    assert (pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "sg",
        "me",
        "s@cret",
        "127.0.0.1",
        "5433",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert parse_database_url("sqlite:////tmp/x.sqlite3")["NAME"] == "/tmp/x.sqlite3"
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        parse_database_url("mysql://x/y")


def test_env_readers_reject_nonsense(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        envbool("FLAG", False)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        envint("N", 5, minimum=1)


@pytest.mark.django_db
def test_tasks_that_succeed_log_nothing_by_default(caplog):
    """The demo's log shows the URL, the credentials and real problems, not a line per
    sweep."""
    import logging

    from compute.tasks import sweep_validator

    caplog.set_level(logging.INFO)
    sweep_validator.delay()  # run at once: the tests' settings are the embedded ones

    assert not [r for r in caplog.records if r.name.startswith("celery")]


def test_task_lines_are_one_setting_away():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASK_LOG")}
    code = (
        "import django, logging; django.setup(); "
        "print(logging.getLevelName(logging.getLogger('celery.app.trace').level))"
    )
    env = {**clean, "DJANGO_SETTINGS_MODULE": "socialgrid.settings", "PYTHONPATH": str(ROOT)}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    loud = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "TASK_LOG_LEVEL": "INFO"},
        capture_output=True,
        text=True,
    )
    assert (quiet.stdout.strip(), loud.stdout.strip()) == ("WARNING", "INFO")
