"""The daily statistics export: BOINC-style gzipped XML of consenting users, their hosts,
and teams."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

from django.core.management import call_command

import pytest

from compute.api.stats_export import export_stats, open_table
from compute.api.tasks import export_daily_stats
from compute.models import Host, Volunteer
from socialgrid.accounts.models import Privacy, Profile
from socialgrid.teams.models import Team, TeamMember

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def volunteer(user_factory, name: str, *, consent: bool, credit: float = 10.0, **profile):
    user = user_factory(name)
    Profile.objects.filter(user=user).update(share_stats=consent, **profile)
    Volunteer.objects.create(user=user, total_credit=credit, rac=credit / 2, rac_time=1.7e9)
    return user


def rows(directory: Path, table: str) -> list[dict[str, str]]:
    with open_table(directory, table) as stream:
        root = ET.parse(stream).getroot()
    assert root.tag == f"{table}s"
    return [{child.tag: child.text or "" for child in row} for row in root]


@pytest.fixture
def world(user_factory):
    ada = volunteer(user_factory, "ada", consent=True, credit=50.0, display_name="Ada <L>")
    volunteer(user_factory, "bob", consent=False)
    ghost = volunteer(user_factory, "ghost", consent=True, privacy=Privacy.ANONYMOUS)
    banned = volunteer(user_factory, "mallory", consent=True)
    Volunteer.objects.filter(user=banned).update(banned=True)
    volunteer(user_factory, "idle", consent=True, credit=0.0)
    team = Team.objects.create(name="Crunchers & Co", slug="crunchers", founder=ada)
    TeamMember.objects.create(user=ada, team=team)
    Team.objects.create(name="Quiet", slug="quiet", founder=user_factory("carol"))
    Host.objects.create(
        user=ada, cores=8, memory_mb=2048, total_credit=30.0, platform_class="blink-x86_64"
    )
    Host.objects.create(user=ada, total_credit=0.0)  # no credit: left out
    Host.objects.create(user=ada, total_credit=5.0, banned=True)
    Host.objects.create(user=banned, total_credit=5.0)
    Host.objects.create(user=None, total_credit=5.0)  # anonymous: no consent
    Host.objects.create(user=ghost, total_credit=2.0)
    Host.objects.create(user=Volunteer.objects.get(user__username="bob").user, total_credit=9.0)
    return {"ada": ada, "ghost": ghost, "team": team}


@pytest.mark.django_db
def test_only_consenting_unbanned_users_with_credit_are_exported(world, tmp_path):
    summary = export_stats(tmp_path, NOW)

    users = rows(summary.directory, "user")
    assert [u["name"] for u in users] == ["Ada <L>", f"Anonymous volunteer #{world['ghost'].id}"]
    ada = users[0]
    assert ada == {
        "id": str(world["ada"].id),
        "name": "Ada <L>",
        "create_time": str(int(world["ada"].date_joined.timestamp())),
        "total_credit": "50.000000",
        "expavg_credit": "25.000000",
        "expavg_time": "1700000000.000000",
        "teamid": str(world["team"].id),
    }
    assert summary.users == 2


@pytest.mark.django_db
def test_hosts_are_those_of_the_listed_users(world, tmp_path):
    summary = export_stats(tmp_path, NOW)

    hosts = rows(summary.directory, "host")
    assert [(h["userid"], h["total_credit"]) for h in hosts] == [
        (str(world["ada"].id), "30.000000"),
        (str(world["ghost"].id), "2.000000"),
    ]
    assert hosts[0]["p_ncpus"] == "8"
    assert hosts[0]["m_nbytes"] == str(2048 * 1024 * 1024)
    assert hosts[0]["os_name"] == "blink-x86_64"


@pytest.mark.django_db
def test_teams_are_public_but_only_consenting_founders_are_named(world, tmp_path):
    summary = export_stats(tmp_path, NOW)

    teams = rows(summary.directory, "team")
    assert [(t["name"], t["nusers"]) for t in teams] == [("Crunchers & Co", "1"), ("Quiet", "0")]
    assert teams[0]["userid"] == str(world["ada"].id)
    assert teams[1]["userid"] == "0"


@pytest.mark.django_db
def test_the_summary_table_and_the_layout(world, tmp_path):
    summary = export_stats(tmp_path, NOW)

    assert summary.directory == tmp_path / "stats_2026_03_01"
    assert sorted(p.name for p in summary.directory.iterdir()) == [
        "host.gz",
        "tables.xml",
        "team.gz",
        "user.gz",
    ]
    tables = ET.parse(summary.directory / "tables.xml").getroot()
    assert {c.tag: c.text for c in tables} == {
        "update_time": str(int(NOW.timestamp())),
        "nusers_total": "2",
        "nteams_total": "2",
        "nhosts_total": "2",
        "total_credit": "60.000000",
    }
    assert (tmp_path / "stats").resolve() == summary.directory.resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.django_db
def test_a_second_export_the_same_day_replaces_the_first(world, tmp_path):
    export_stats(tmp_path, NOW)
    Profile.objects.filter(user=world["ada"]).update(share_stats=False)

    summary = export_stats(tmp_path, NOW)

    assert [u["name"] for u in rows(summary.directory, "user")] == [
        f"Anonymous volunteer #{world['ghost'].id}"
    ]
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()] == [
        "stats_2026_03_01"
    ]


@pytest.mark.django_db
def test_text_that_xml_cannot_hold_is_dropped(user_factory, tmp_path):
    volunteer(user_factory, "eve", consent=True, display_name="bad\x01name")

    summary = export_stats(tmp_path, NOW)

    assert rows(summary.directory, "user")[0]["name"] == "badname"


@pytest.mark.django_db
def test_the_command_writes_and_reports(world, tmp_path):
    out = StringIO()

    call_command("export_stats", "--output", str(tmp_path), stdout=out)

    assert "2 users, 2 teams, 2 hosts written to" in out.getvalue()
    assert (tmp_path / "stats" / "user.gz").exists()


@pytest.mark.django_db
def test_the_daily_task_exports_once_a_day(world, tmp_path, settings):
    settings.STATS_EXPORT_DIR = tmp_path

    first = export_daily_stats()
    (Path(first) / "marker").write_text("kept")
    second = export_daily_stats()

    assert first == second
    assert (Path(first) / "marker").exists()


def test_the_beat_runs_the_export(settings):
    from socialgrid.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["stats-export"]
    assert entry["task"] in app.tasks
    assert float(entry["schedule"]) <= 86400
