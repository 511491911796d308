"""Who is computing: identifying a host when it says hello, anonymous host tokens, and an
account claiming the anonymous host it computed on."""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime

from django.core import signing
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils import timezone

from compute import signals
from compute.catalog import catalog
from compute.models import AppVersion, CreditEntry, Host, Membership, Project, Replica, Volunteer
from compute.protocol import Capabilities
from compute.scheduler import Assignment
from compute.states import MembershipState, ServerState

TOKEN_SALT = "socialgrid.host"


class Refused(Exception):
    """The host may not compute; ``reason`` is one of the protocol's close reasons."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Session:
    host: Host
    host_token: str | None
    project_ids: list[int] | None
    resume: list[Assignment]
    user_total: float | None


def host_token(host: Host) -> str:
    return signing.dumps(str(host.uuid), salt=TOKEN_SALT)


def read_host_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        return None


def _apply_capabilities(host: Host, caps: Capabilities, now: datetime) -> None:
    host.cores = caps.cores
    host.memory_mb = caps.memory_mb
    host.user_agent = caps.user_agent
    host.platform_class = caps.platform
    host.has_wasm, host.has_simd, host.has_threads = caps.wasm, caps.simd, caps.threads
    host.benchmark_fpops = caps.benchmark_fpops
    host.last_seen = now


def open_session(
    user,
    caps: Capabilities,
    *,
    host_uuid: str | None,
    token: str | None,
    project_slug: str | None,
    now: datetime | None = None,
) -> Session:
    """Identify (or create) the host behind a hello and what it computes for.

    A signed-in user's host is theirs by id; an anonymous host needs its signed token; an
    anonymous host presented with its token by a signed-in user is claimed by that user.
    """
    now = now or timezone.now()
    signed_in = user is not None and user.is_authenticated
    project_id = None
    if project_slug:
        # The process's catalog knows the projects with apps (a hello storm after a
        # restart asks it hundreds of times a second); the database, the others.
        project_id = catalog.active_project(project_slug) or (
            Project.objects.filter(slug=project_slug, is_active=True)
            .values_list("id", flat=True)
            .first()
        )
        if project_id is None:
            raise Refused("unknown_project", f"no active project {project_slug!r}")
    elif not signed_in:
        raise Refused("unauthenticated", "sign in, or name a project to compute for anonymously")
    if signed_in and Volunteer.objects.filter(user=user, banned=True).exists():
        raise Refused("forbidden", "this account may not compute")

    with transaction.atomic():
        host = _find_host(user if signed_in else None, host_uuid, token)
        if host is not None and host.banned:
            raise Refused("forbidden", "this host may not compute")
        created = host is None
        if created:
            host = Host(user=user if signed_in else None)
        elif signed_in and host.user_id is None:
            claim_host(host, user)
        _apply_capabilities(host, caps, now)
        host.save()
        if signed_in and project_id is not None:
            _join(user, project_id)
    return Session(
        host=host,
        host_token=None if signed_in else host_token(host),
        project_ids=None if signed_in else [project_id],
        # A host made by this hello holds nothing yet: no query for what it holds.
        resume=[] if created else leased_to(host),
        user_total=user_total(user) if signed_in else None,
    )


def _find_host(user, host_uuid: str | None, token: str | None) -> Host | None:
    if not host_uuid:
        return None
    try:
        uuidlib.UUID(host_uuid)
    except ValueError:
        return None
    host = Host.objects.select_for_update().filter(uuid=host_uuid).first()
    if host is None:
        return None
    if user is not None and host.user_id == user.id:
        return host
    if host.user_id is None and read_host_token(token) == str(host.uuid):
        return host
    # Someone else's host, or an anonymous one without proof: never reuse it.
    return None


def _join(user, project_id: int) -> None:
    """Pressing Start on a project page joins it (or rejoins it)."""
    membership, created = Membership.objects.get_or_create(user=user, project_id=project_id)
    if not created and (membership.state != MembershipState.ACTIVE or membership.no_more_work):
        Membership.objects.filter(id=membership.id).update(
            state=MembershipState.ACTIVE, no_more_work=False
        )


def user_total(user) -> float:
    """A signed-in volunteer's total credit (0 before their first)."""
    volunteer = Volunteer.objects.filter(user=user).only("total_credit").first()
    return volunteer.total_credit if volunteer else 0.0


def claim_host(host: Host, user) -> None:
    """An account takes over an anonymous host; the host's credit moves with it.

    Ledger entries of the host get the user; the user's totals and per-project memberships
    grow by them; the host's replicas get the user where that keeps one replica per user
    per work unit (the database insists)."""
    host.user = user
    Host.objects.filter(id=host.id, user__isnull=True).update(user=user)
    entries = CreditEntry.objects.filter(host=host, user__isnull=True)
    per_project = list(entries.values("project_id").annotate(total=Sum("amount")).order_by())
    entries.update(user=user)
    if per_project:
        moved = sum(p["total"] for p in per_project)
        Volunteer.objects.get_or_create(user=user)
        Volunteer.objects.filter(user=user).update(
            total_credit=F("total_credit") + moved, rac=F("rac") + host.rac
        )
        for p in per_project:
            Membership.objects.get_or_create(user=user, project_id=p["project_id"])
            Membership.objects.filter(user=user, project_id=p["project_id"]).update(
                total_credit=F("total_credit") + p["total"]
            )
        signals.credit_claimed.send(sender=Host, user_id=user.pk, amount=moved, now=timezone.now())
    mine = Replica.objects.filter(user=user, workunit_id=OuterRef("workunit_id"))
    Replica.objects.filter(host=host, user__isnull=True).exclude(Exists(mine)).update(user=user)


def leased_to(host: Host) -> list[Assignment]:
    """The replicas a host still holds, as assignments it can carry on with."""
    replicas = list(
        Replica.objects.filter(host=host, server_state=ServerState.IN_PROGRESS)
        .filter(Q(deadline__gt=timezone.now()))
        .select_related("workunit", "project", "app")
        .only(
            "id",
            "lease_token",
            "deadline",
            "app_version_id",
            "workunit__name",
            "workunit__input",
            "project__slug",
            "app__name",
        )
        .order_by("id")
    )
    versions = {
        v.id: v
        for v in AppVersion.objects.filter(id__in={r.app_version_id for r in replicas}).defer(
            "kernel", "wasm"
        )
    }
    out = []
    for r in replicas:
        v = versions.get(r.app_version_id)
        if v is None:
            continue
        out.append(
            Assignment(
                replica_id=r.id,
                workunit_id=r.workunit_id,
                name=r.workunit.name,
                project_slug=r.project.slug,
                app_id=r.app_id,
                app_name=r.app.name,
                version=v.version,
                kernel_url=v.get_kernel_url(),
                kernel_sha256=v.kernel_sha256,
                wasm_url=v.get_wasm_url(),
                wasm_sha256=v.wasm_sha256,
                input_json=json.dumps(r.workunit.input, separators=(",", ":")),
                deadline=r.deadline,
                lease_token=r.lease_token,
            )
        )
    return out


def touch(host_id: int, now: datetime | None = None) -> None:
    Host.objects.filter(id=host_id).update(last_seen=now or timezone.now())
