"""Daily statistics files for third-party stats sites, in the shape of BOINC's db_dump.

``export_stats(directory)`` writes ``stats_YYYY_MM_DD/`` under ``directory`` with
``tables.xml``, ``user.gz``, ``team.gz`` and ``host.gz`` (gzipped XML), then points the
``stats`` symlink at it, as BOINC does. The files are written into a hidden directory first
and renamed into place, so a stats site downloading during an export never gets a half
file. The format and every field are described in docs/stats-export.md.

Who is in it:

- **users**: active accounts that ticked "share my statistics" on their profile
  (``Profile.share_stats``), are not banned and have credit. The name is the one the site
  shows (``Profile.public_name``: "Anonymous volunteer #id" for those who chose anonymity).
- **hosts**: the hosts, not banned and with credit, of the users above. Anonymous hosts
  (no account, so no consent) are left out.
- **teams**: every team (teams are public). The founder's id only when the founder is in
  the user list; otherwise 0.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Sum
from django.utils import timezone

from compute.models import Host, Volunteer
from socialgrid.teams.models import Team

LINK = "stats"
# XML 1.0 cannot carry most control characters, even escaped.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    users: int
    teams: int
    hosts: int


def default_directory() -> Path:
    return Path(getattr(settings, "STATS_EXPORT_DIR", settings.VAR_DIR / "stats"))


def day_directory(base: Path, day: datetime) -> Path:
    return base / f"stats_{day:%Y_%m_%d}"


def _epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return escape(_NOT_XML.sub("", str(value)))


def _element(tag: str, fields: Iterable[tuple[str, Any]]) -> str:
    inner = "".join(f"  <{name}>{_text(value)}</{name}>\n" for name, value in fields)
    return f"<{tag}>\n{inner}</{tag}>\n"


def consenting_volunteers():
    """Volunteers whose rows go into user.gz (see the module docstring)."""
    return Volunteer.objects.filter(
        banned=False,
        total_credit__gt=0,
        user__is_active=True,
        user__profile__share_stats=True,
    )


def user_rows() -> Iterator[str]:
    volunteers = (
        consenting_volunteers()
        .select_related("user__profile", "user__team_membership")
        .order_by("user_id")
    )
    for v in volunteers.iterator(chunk_size=2000):
        membership = getattr(v.user, "team_membership", None)
        yield _element(
            "user",
            [
                ("id", v.user_id),
                ("name", v.user.profile.public_name),
                ("create_time", _epoch(v.user.date_joined)),
                ("total_credit", v.total_credit),
                ("expavg_credit", v.rac),
                ("expavg_time", v.rac_time),
                ("teamid", membership.team_id if membership else 0),
            ],
        )


def host_rows() -> Iterator[str]:
    banned_owner = Volunteer.objects.filter(user_id=OuterRef("user_id"), banned=True)
    hosts = (
        Host.objects.filter(
            banned=False,
            total_credit__gt=0,
            user__isnull=False,
            user__is_active=True,
            user__profile__share_stats=True,
        )
        .exclude(Exists(banned_owner))
        .order_by("id")
    )
    for h in hosts.iterator(chunk_size=2000):
        yield _element(
            "host",
            [
                ("id", h.id),
                ("userid", h.user_id),
                ("create_time", _epoch(h.created_at)),
                ("rpc_time", _epoch(h.last_seen)),
                ("total_credit", h.total_credit),
                ("expavg_credit", h.rac),
                ("expavg_time", h.rac_time),
                ("p_ncpus", h.cores),
                ("p_fpops", h.benchmark_fpops),
                ("m_nbytes", h.memory_mb * 1024 * 1024),
                ("os_name", h.platform_class),
            ],
        )


def team_rows() -> Iterator[str]:
    listed = consenting_volunteers().filter(user_id=OuterRef("founder_id"))
    teams = Team.objects.annotate(nusers=Count("members"), founder_listed=Exists(listed)).order_by(
        "id"
    )
    for t in teams.iterator(chunk_size=2000):
        yield _element(
            "team",
            [
                ("id", t.id),
                ("name", t.name),
                ("userid", t.founder_id if t.founder_listed else 0),
                ("url", t.url),
                ("create_time", _epoch(t.created_at)),
                ("total_credit", t.total_credit),
                ("expavg_credit", t.rac),
                ("expavg_time", t.rac_time),
                ("nusers", t.nusers),
            ],
        )


def _write_table(path: Path, root: str, rows: Iterator[str]) -> int:
    n = 0
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as stream:
        stream.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>\n')
        for row in rows:
            stream.write(row)
            n += 1
        stream.write(f"</{root}>\n")
    return n


def _write_tables(path: Path, now: datetime, counts: dict[str, int], credit: float) -> None:
    fields = [
        ("update_time", _epoch(now)),
        ("nusers_total", counts["users"]),
        ("nteams_total", counts["teams"]),
        ("nhosts_total", counts["hosts"]),
        ("total_credit", credit),
    ]
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + _element("tables", fields)
    path.write_text(body, encoding="utf-8")


def _install(staging: Path, final: Path) -> None:
    """Swap the new directory in: a reader sees the old files or the new, never half."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{secrets.token_hex(4)}")
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    link = final.parent / LINK
    temporary = final.parent / f".{LINK}-{secrets.token_hex(4)}"
    os.symlink(final.name, temporary)
    os.replace(temporary, link)


def export_stats(directory: Path | None = None, now: datetime | None = None) -> ExportSummary:
    now = now or timezone.now()
    base = Path(directory) if directory is not None else default_directory()
    base.mkdir(parents=True, exist_ok=True)
    final = day_directory(base, now)
    staging = base / f".staging-{final.name}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        counts = {
            "users": _write_table(staging / "user.gz", "users", user_rows()),
            "teams": _write_table(staging / "team.gz", "teams", team_rows()),
            "hosts": _write_table(staging / "host.gz", "hosts", host_rows()),
        }
        credit = consenting_volunteers().aggregate(s=Sum("total_credit"))["s"] or 0.0
        _write_tables(staging / "tables.xml", now, counts, credit)
        _install(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportSummary(final, counts["users"], counts["teams"], counts["hosts"])


def open_table(directory: Path, name: str) -> IO[str]:
    """A table of an export, for reading (tests, and whoever checks a dump by hand)."""
    return gzip.open(directory / f"{name}.gz", "rt", encoding="utf-8")
