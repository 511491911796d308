"""The authorisation matrix: who may do what, for every URL and WebSocket message.

Five roles meet one fixed world (``World``): an anonymous visitor; a volunteer, signed in with
no special relation to anything (but the addressee of a friend request and a member of the
project); the founder of the team in question; the owner of the project (and its batch) in
question; and staff (a superuser, for the Django admin). Each row names a URL pattern, a
method and what each role gets:

- ``OK`` (200), ``to(path)`` (a redirect to that place), ``created`` (201, the API);
- ``LOGIN`` (302 to the sign-in page; login-required pages for anonymous visitors),
  ``ADMIN_LOGIN`` (302 to the admin's sign-in page), ``FORBIDDEN`` (403), ``NOT_FOUND`` (404:
  someone else's thing, told apart from nothing), ``NO_KEY`` (401: the API without a key),
  ``NOT_ALLOWED`` (405: the method).

A refused request changes nothing in the database (every table is compared before and
after); an allowed unsafe request changes what its row says it changes. The set of rows is
checked against the URL resolver, the protocol schema's client messages and the WebSocket
routes, so a new URL, message type or socket without a row fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from asgiref.sync import sync_to_async

from compute import submission
from compute.api.tokens import issue_token
from compute.models import (
    AssimilatedOutput,
    CreditEntry,
    Host,
    HostApp,
    Membership,
    Project,
    Replica,
    Volunteer,
)
from socialgrid.feed.models import Badge, BadgeKind, FeedItem
from socialgrid.friends import friendships
from socialgrid.friends.models import FriendRequest
from socialgrid.invites.codes import get_invite_code
from socialgrid.invites.models import InviteEmail, Referral
from socialgrid.teams import challenges
from socialgrid.teams.membership import create_team, join_team
from socialgrid.teams.models import Team

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "protocol.schema.json"

ANONYMOUS, VOLUNTEER, FOUNDER, OWNER, STAFF = ROLES = (
    "anonymous",
    "volunteer",
    "founder",
    "owner",
    "staff",
)


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    volunteer: Any
    founder: Any
    owner: Any
    staff: Any
    member: Any  # in the founder's team: the one transferred to or removed
    project: Project
    batch: Any
    kernel: Any  # the project's app version
    team: Team
    challenge: Any
    friend_request: FriendRequest  # from the founder to the volunteer, pending
    friend: Any  # the volunteer's friend (the owner)
    invite: Any  # the volunteer's invite code
    owner_token: Any
    keys: dict[str, str] = field(default_factory=dict)  # role -> bearer key

    def user(self, role: str):
        return None if role == ANONYMOUS else getattr(self, role)


def build_world(user_factory, project_factory) -> World:
    """The fixed world of the matrix: one of everything, with one row of each model the
    Django admin shows (the admin rows open each one's change page)."""
    volunteer = user_factory("vera")
    founder = user_factory("fred")
    owner = user_factory("olga")
    member = user_factory("milo")
    rival = user_factory("rita")
    staff = get_user_model().objects.create_superuser("stan", "stan@example.org", "pw")
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))

    project = project_factory(owner=owner, slug="alpha", name="Alpha")
    project_factory(owner=owner, slug="hidden", name="Hidden", is_public=False)
    member.profile.privacy = "anonymous"
    member.profile.save()
    app = project.apps.get()
    batch = submission.create_batch(project, app, [{"x": 1}, {"x": 2}], name="first batch")
    Membership.objects.create(user=volunteer, project=project)

    team = create_team(founder, "Night Owls", description="We compute at night.")
    join_team(member, team)
    other_team = create_team(rival, "Early Birds")
    start = timezone.now() + timedelta(hours=1)
    challenge = challenges.create_challenge(
        founder,
        name="Spring race",
        starts_at=start,
        ends_at=start + timedelta(days=3),
        team_slugs=[other_team.slug],
    )

    friend_request = friendships.send_request(founder, volunteer).request
    friendships.befriend(volunteer, owner)
    invite = get_invite_code(volunteer)

    # One row of each remaining model the admin shows.
    host = Host.objects.create(user=volunteer, name="vera's laptop")
    HostApp.objects.create(host=host, app=app, daily_quota=10, quota_day=timezone.now().date())
    Volunteer.objects.get_or_create(user=volunteer)
    workunit = batch.workunits.order_by("id").first()
    AssimilatedOutput.objects.create(
        workunit_id=workunit.id,
        project=project,
        batch=batch,
        name=workunit.name,
        input={"x": 1},
        output=1,
    )
    CreditEntry.objects.create(
        replica_id=10**9,
        workunit_id=workunit.id,
        project=project,
        host=host,
        user=volunteer,
        amount=1.0,
        granted_at=timezone.now(),
    )
    Badge.objects.create(user=volunteer, kind=BadgeKind.CREDIT, level=1)
    Referral.objects.create(recruit=member, inviter=volunteer, invite_code=invite)
    InviteEmail.objects.create(sender=volunteer, invite_code=invite, sent_at=timezone.now())
    Group.objects.create(name="moderators")
    for user in (volunteer, founder, owner, staff):
        EmailAddress.objects.create(user=user, email=user.email, primary=True)
    social_app = SocialApp.objects.create(provider="github", name="GitHub", client_id="id")
    account = SocialAccount.objects.create(user=founder, provider="github", uid="1")
    SocialToken.objects.create(app=social_app, account=account, token="t")
    assert FeedItem.objects.exists()

    world = World(
        volunteer=volunteer,
        founder=founder,
        owner=owner,
        staff=staff,
        member=member,
        project=project,
        batch=batch,
        kernel=app.versions.get(),
        team=team,
        challenge=challenge,
        friend_request=friend_request,
        friend=owner,
        invite=invite,
        owner_token=None,
    )
    for role in ROLES[1:]:
        issued = issue_token(world.user(role), f"{role}'s key")
        world.keys[role] = issued.key
        if role == OWNER:
            world.owner_token = issued.token
    return world


@pytest.fixture
def world(user_factory, project_factory, settings) -> World:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "socialgrid-authorisation-matrix",
        }
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return build_world(user_factory, project_factory)


# Fields that a request may touch without acting on anything (bookkeeping of a visit).
VOLATILE = {"last_login", "last_used_at", "last_seen", "expire_date", "session_data"}


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table (but sessions), for "nothing changed" comparisons."""
    rows = {}
    for model in apps.get_models():
        if model is Session:
            continue
        names = [f.attname for f in model._meta.concrete_fields if f.attname not in VOLATILE]
        rows[model._meta.label] = [
            tuple(repr(v) for v in row) for row in model.objects.order_by("pk").values_list(*names)
        ]
    rows["mail.outbox"] = [(repr(m.to), m.subject) for m in mail.outbox]
    return rows


def changed_tables(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


# --- expectations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    status: int
    location: str | None = None  # for redirects: the exact target, or a prefix ending in *
    changes: tuple[str, ...] = ()  # tables an allowed request changes (unsafe methods)

    def __str__(self) -> str:
        return f"{self.status}{' → ' + self.location if self.location else ''}"


OK = Expect(200)
LOGIN = Expect(302, "/accounts/login/?next=*")
ADMIN_LOGIN = Expect(302, "/admin/login/?next=*")
FORBIDDEN = Expect(403)
NOT_FOUND = Expect(404)
NOT_ALLOWED = Expect(405)
NO_KEY = Expect(401)


def to(location: str, *changes: str) -> Expect:
    return Expect(302, location, changes)


def ok(*changes: str, status: int = 200) -> Expect:
    return Expect(status, None, changes)


def created(*changes: str) -> Expect:
    return Expect(201, None, changes)


def everyone(expect: Expect) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, expect)


def signed_in(expect: Expect, *, anonymous: Expect = LOGIN) -> dict[str, Expect]:
    return {ANONYMOUS: anonymous, **dict.fromkeys(ROLES[1:], expect)}


def only(
    role: str, allowed: Expect, refused: Expect, *, anonymous: Expect = LOGIN
) -> dict[str, Expect]:
    return {**signed_in(refused, anonymous=anonymous), role: allowed}


def api_only_owner(allowed: Expect) -> dict[str, Expect]:
    return only(OWNER, allowed, NOT_FOUND, anonymous=NO_KEY)


@dataclass(frozen=True)
class Row:
    pattern: str  # the URL name (or, unnamed, its route)
    method: str
    path: str  # formatted with the World's attributes
    expect: dict[str, Expect]
    data: Callable[[World], Any] | None = None
    content_type: str | None = None
    api: bool = False  # authenticate with the role's bearer key, not a session

    @property
    def id(self) -> str:
        return f"{self.method} {self.pattern}"


TEAM = "/teams/{team.slug}/"
PROJECT = "/projects/{project.slug}/"
USER_TABLE = "auth.User"

HTTP_MATRIX: list[Row] = [
    # --- public pages -----------------------------------------------------------------------
    Row("compute:home", "GET", "/", everyone(OK)),
    Row("compute:project", "GET", PROJECT, everyone(OK)),
    Row("compute:project_stats", "GET", PROJECT + "stats.json", everyone(OK)),
    Row("compute:projects_with_work", "GET", "/projects/with-work.json", everyone(OK)),
    # A square-app project has no picture: nobody gets one.
    Row("compute:project_picture", "GET", PROJECT + "picture.png", everyone(NOT_FOUND)),
    Row("compute:kernel", "GET", "/kernels/{kernel.pk}/{kernel.kernel_sha256}.js", everyone(OK)),
    Row(
        "compute:wasm",
        "GET",
        "/kernels/{kernel.pk}/{kernel.kernel_sha256}.wasm",
        everyone(NOT_FOUND),
    ),
    Row("compute:healthz", "GET", "/healthz", everyone(OK)),
    Row("accounts:profile", "GET", "/u/{volunteer.username}/", everyone(OK)),
    # Only volunteers who chose to be anonymous have an anonymous page; the volunteer did not.
    Row("accounts:anonymous_profile", "GET", "/u/anonymous/{volunteer.pk}/", everyone(NOT_FOUND)),
    # Milo chose to be anonymous: no page by username (but for himself), one by number.
    Row("accounts:profile", "GET", "/u/{member.username}/", everyone(NOT_FOUND)),
    Row("accounts:anonymous_profile", "GET", "/u/anonymous/{member.pk}/", everyone(OK)),
    # A project that is not public has no public page, not even for its owner (who has the
    # owner's dashboard instead).
    Row("compute:project", "GET", "/projects/hidden/", everyone(NOT_FOUND)),
    Row("compute:project_stats", "GET", "/projects/hidden/stats.json", everyone(NOT_FOUND)),
    Row("plugin:embed", "GET", "/embed/hidden/", everyone(NOT_FOUND)),
    Row("leaderboards:index", "GET", "/leaderboards/?project=hidden", everyone(NOT_FOUND)),
    Row("compute:membership", "POST", "/projects/hidden/join/", signed_in(NOT_FOUND)),
    Row("owners:project", "GET", "/owners/projects/hidden/", only(OWNER, OK, NOT_FOUND)),
    Row("invites:landing", "GET", "/invite/{invite.code}/", everyone(OK)),
    Row("teams:list", "GET", "/teams/", everyone(OK)),
    Row("teams:detail", "GET", TEAM, everyone(OK)),
    Row("teams:challenges", "GET", "/teams/challenges/", everyone(OK)),
    Row("teams:challenge", "GET", "/teams/challenges/{challenge.slug}/", everyone(OK)),
    Row("leaderboards:index", "GET", "/leaderboards/", everyone(OK)),
    Row("plugin:embed", "GET", "/embed/{project.slug}/", everyone(OK)),
    # Facebook's canvas POST is signed with the app secret; without one configured it is off.
    Row("plugin:facebook", "POST", "/embed/facebook/", everyone(NOT_FOUND), data=lambda w: {}),
    Row("plugin:facebook", "GET", "/embed/facebook/", everyone(NOT_ALLOWED)),
    # --- a volunteer's own pages ------------------------------------------------------------
    Row("accounts:edit_profile", "GET", "/profile/", signed_in(OK)),
    Row(
        "accounts:edit_profile",
        "POST",
        "/profile/",
        signed_in(to("/profile/", "accounts.Profile")),
        data=lambda w: {"display_name": "Changed", "privacy": "named", "bio": ""},
    ),
    Row("friends:index", "GET", "/friends/", signed_in(OK)),
    Row("feed:index", "GET", "/feed/", signed_in(OK)),
    Row("feed:badges", "GET", "/feed/badges/", signed_in(OK)),
    # The invite page makes the volunteer's own code on the first visit.
    Row(
        "invites:invite",
        "GET",
        "/invite/",
        {**signed_in(ok("invites.InviteCode")), VOLUNTEER: OK},
    ),
    Row(
        "invites:send_email",
        "POST",
        "/invite/email/",
        {
            **signed_in(to("/invite/", "invites.InviteEmail", "invites.InviteCode", "mail.outbox")),
            VOLUNTEER: to("/invite/", "invites.InviteEmail", "mail.outbox"),
        },
        data=lambda w: {"addresses": "friend@example.org", "message": "Join us"},
    ),
    Row("invites:send_email", "GET", "/invite/email/", everyone(NOT_ALLOWED)),
    # --- friends: a request acts on the requester's own relations only ----------------------
    Row(
        "friends:send_request",
        "POST",
        "/friends/request/{member.username}/",
        signed_in(to("/friends/", "friends.FriendRequest")),
    ),
    Row(
        "friends:send_request_by_id",
        "POST",
        "/friends/request/id/{member.pk}/",
        signed_in(to("/friends/", "friends.FriendRequest")),
    ),
    Row(
        "friends:accept",
        "POST",
        "/friends/requests/{friend_request.pk}/accept/",
        only(
            VOLUNTEER,
            to("/friends/", "friends.FriendRequest", "friends.Friendship", "feed.FeedItem"),
            NOT_FOUND,
        ),
    ),
    Row(
        "friends:decline",
        "POST",
        "/friends/requests/{friend_request.pk}/decline/",
        only(VOLUNTEER, to("/friends/", "friends.FriendRequest"), NOT_FOUND),
    ),
    Row(
        "friends:cancel",
        "POST",
        "/friends/requests/{friend_request.pk}/cancel/",
        only(FOUNDER, to("/friends/", "friends.FriendRequest"), NOT_FOUND),
    ),
    # The volunteer and the owner are friends: each may end it, nobody else.
    Row(
        "friends:remove",
        "POST",
        "/friends/remove/{friend.pk}/",
        only(VOLUNTEER, to("/friends/", "friends.Friendship"), NOT_FOUND),
    ),
    Row("friends:remove", "GET", "/friends/remove/{friend.pk}/", everyone(NOT_ALLOWED)),
    # --- teams ------------------------------------------------------------------------------
    Row("teams:new", "GET", "/teams/new/", signed_in(OK)),
    Row(
        "teams:new",
        "POST",
        "/teams/new/",
        {
            **signed_in(to("/teams/new-team/", "teams.Team", "teams.TeamMember", "feed.FeedItem")),
            # A founder cannot walk away from a team with members: the form says why.
            FOUNDER: OK,
        },
        data=lambda w: {"name": "New Team", "description": "", "url": ""},
    ),
    Row("teams:edit", "GET", TEAM + "edit/", only(FOUNDER, OK, FORBIDDEN)),
    Row(
        "teams:edit",
        "POST",
        TEAM + "edit/",
        only(FOUNDER, to(TEAM, "teams.Team"), FORBIDDEN),
        data=lambda w: {"description": "Taken over", "url": ""},
    ),
    Row(
        "teams:join",
        "POST",
        TEAM + "join/",
        {
            **signed_in(to(TEAM, "teams.TeamMember", "feed.FeedItem")),
            FOUNDER: to(TEAM),  # already in it: told so, nothing changes
        },
    ),
    Row(
        "teams:quit",
        "POST",
        TEAM + "quit/",
        # Only members can quit; the founder must hand the team over first.
        signed_in(to(TEAM)),
    ),
    Row(
        "teams:transfer",
        "POST",
        TEAM + "founder/",
        only(FOUNDER, to(TEAM, "teams.Team"), FORBIDDEN),
        data=lambda w: {"user": w.member.pk},
    ),
    Row(
        "teams:remove",
        "POST",
        TEAM + "remove/",
        only(FOUNDER, to(TEAM, "teams.TeamMember", "feed.FeedItem"), FORBIDDEN),
        data=lambda w: {"user": w.member.pk},
    ),
    Row("teams:challenge_new", "GET", "/teams/challenges/new/", only(FOUNDER, OK, FORBIDDEN)),
    Row(
        "teams:challenge_new",
        "POST",
        "/teams/challenges/new/",
        only(FOUNDER, to("/teams/challenges/*", "teams.Challenge", "feed.FeedItem"), FORBIDDEN),
        data=lambda w: {
            "name": "Summer race",
            "description": "",
            "starts_at": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
            "teams": "early-birds",
        },
    ),
    # --- a project's membership: always the signed-in volunteer's own -----------------------
    # The volunteer is an active member already; for anyone else the first change makes them
    # a member (and says so in their feed).
    *[
        Row(
            "compute:membership",
            "POST",
            PROJECT + action + "/",
            {
                **signed_in(to(PROJECT, "compute.Membership", "feed.FeedItem")),
                VOLUNTEER: to(PROJECT, *volunteer_changes),
            },
        )
        for action, volunteer_changes in (
            ("join", ()),
            ("pause", ("compute.Membership",)),
            ("resume", ()),
            ("finish", ("compute.Membership",)),
            ("leave", ("compute.Membership",)),
        )
    ],
    Row("compute:membership", "GET", PROJECT + "join/", everyone(NOT_ALLOWED)),
    # --- the owner's pages (sessions) -------------------------------------------------------
    Row("owners:projects", "GET", "/owners/", signed_in(OK)),
    Row("owners:tokens", "GET", "/owners/tokens/", signed_in(OK)),
    Row(
        "owners:tokens",
        "POST",
        "/owners/tokens/",
        signed_in(to("/owners/tokens/", "api.ApiToken")),
        data=lambda w: {"name": "new key"},
    ),
    Row(
        "owners:revoke_token",
        "POST",
        "/owners/tokens/{owner_token.pk}/revoke/",
        # Anyone else is told there is no such token; the owner's key keeps working.
        only(OWNER, to("/owners/tokens/", "api.ApiToken"), to("/owners/tokens/")),
    ),
    Row("owners:project", "GET", "/owners/projects/{project.slug}/", only(OWNER, OK, NOT_FOUND)),
    Row(
        "owners:project_live",
        "GET",
        "/owners/projects/{project.slug}/live/",
        only(OWNER, OK, NOT_FOUND),
    ),
    Row(
        "owners:batch_results",
        "GET",
        "/owners/batches/{batch.pk}/results.csv",
        only(OWNER, OK, NOT_FOUND),
    ),
    # --- the owners' REST API (bearer keys) -------------------------------------------------
    Row("api:api-root", "GET", "/api/", everyone(NOT_FOUND), api=True),
    Row("api:openapi-json", "GET", "/api/openapi.json", everyone(OK), api=True),
    Row("api:openapi-view", "GET", "/api/docs", everyone(OK), api=True),
    # Every key lists its own projects (the row checks the owner's project is not shown).
    Row("api:projects", "GET", "/api/projects", signed_in(OK, anonymous=NO_KEY), api=True),
    Row(
        "api:create_project",
        "POST",
        "/api/projects",
        {
            ANONYMOUS: NO_KEY,
            VOLUNTEER: Expect(403),
            FOUNDER: Expect(403),
            OWNER: created("compute.Project"),
            STAFF: created("compute.Project"),
        },
        data=lambda w: {"slug": "brand-new", "name": "Brand new"},
        content_type="application/json",
        api=True,
    ),
    Row("api:project", "GET", "/api/projects/{project.slug}", api_only_owner(OK), api=True),
    Row(
        "api:update_project",
        "PATCH",
        "/api/projects/{project.slug}",
        api_only_owner(Expect(200, None, ("compute.Project",))),
        data=lambda w: {"delay_bound": 900},
        content_type="application/json",
        api=True,
    ),
    Row("api:apps", "GET", "/api/projects/{project.slug}/apps", api_only_owner(OK), api=True),
    Row(
        "api:update_app",
        "PATCH",
        "/api/projects/{project.slug}/apps/square",
        api_only_owner(Expect(200, None, ("compute.App",))),
        data=lambda w: {"min_cores": 2},
        content_type="application/json",
        api=True,
    ),
    Row(
        "api:create_app",
        "POST",
        "/api/projects/{project.slug}/apps",
        api_only_owner(created("compute.App")),
        data=lambda w: {
            "name": "search",
            "title": "Key search",
            "reference_path": "compute.examples.keysearch.run",
            "assimilator_path": "compute.examples.keysearch.assimilate",
        },
        content_type="application/json",
        api=True,
    ),
    Row(
        "api:create_version",
        "POST",
        "/api/projects/{project.slug}/apps/square/versions",
        api_only_owner(created("compute.AppVersion")),
        data=lambda w: {
            "kernel": SimpleUploadedFile(
                "k.js", b"export function run(i) { return i; }\n", "text/javascript"
            )
        },
        api=True,
    ),
    Row(
        "api:submit_batch",
        "POST",
        "/api/projects/{project.slug}/apps/square/batches",
        api_only_owner(created("compute.Batch", "compute.WorkUnit", "compute.Replica")),
        data=lambda w: b'{"x": 5}\n{"x": 6}\n',
        content_type="application/x-ndjson",
        api=True,
    ),
    Row(
        "api:submit_sweep",
        "POST",
        "/api/projects/{project.slug}/apps/square/sweeps",
        api_only_owner(created("compute.Batch", "compute.WorkUnit", "compute.Replica")),
        data=lambda w: {"parameter": "x", "start": 0, "stop": 3, "step": 1},
        content_type="application/json",
        api=True,
    ),
    Row(
        "api:project_batches",
        "GET",
        "/api/projects/{project.slug}/batches",
        api_only_owner(OK),
        api=True,
    ),
    Row("api:batch", "GET", "/api/batches/{batch.pk}", api_only_owner(OK), api=True),
    Row(
        "api:cancel_batch",
        "POST",
        "/api/batches/{batch.pk}/cancel",
        api_only_owner(ok("compute.Batch", "compute.WorkUnit", "compute.Replica")),
        api=True,
    ),
    Row(
        "api:batch_results",
        "GET",
        "/api/batches/{batch.pk}/results",
        api_only_owner(OK),
        api=True,
    ),
    # --- sign-in and account pages (django-allauth) -----------------------------------------
    Row("account_login", "GET", "/accounts/login/", signed_in(to("/"), anonymous=OK)),
    Row("account_logout", "GET", "/accounts/logout/", signed_in(OK, anonymous=to("/"))),
    Row("account_signup", "GET", "/accounts/signup/", signed_in(to("/"), anonymous=OK)),
    Row("account_inactive", "GET", "/accounts/inactive/", everyone(OK)),
    Row("account_reauthenticate", "GET", "/accounts/reauthenticate/", signed_in(OK)),
    Row(
        "account_request_reauthentication_code",
        "GET",
        "/accounts/reauthenticate/code/",
        # No role has a verified address to send a code to: the password is the way back.
        signed_in(to("/accounts/reauthenticate/")),
    ),
    Row(
        "account_confirm_reauthentication_code",
        "GET",
        "/accounts/reauthenticate/code/confirm/",
        # No code was asked for.
        signed_in(to("/accounts/reauthenticate/code/")),
    ),
    Row("account_email", "GET", "/accounts/email/", signed_in(OK)),
    Row("account_email_verification_sent", "GET", "/accounts/confirm-email/", everyone(OK)),
    Row("account_change_password", "GET", "/accounts/password/change/", signed_in(OK)),
    Row(
        "account_set_password",
        "GET",
        "/accounts/password/set/",
        # Every role has a password already: setting one is changing it.
        signed_in(to("/accounts/password/change/")),
    ),
    Row("account_reset_password", "GET", "/accounts/password/reset/", everyone(OK)),
    Row("account_reset_password_done", "GET", "/accounts/password/reset/done/", everyone(OK)),
    Row(
        "account_reset_password_from_key",
        "GET",
        "/accounts/password/reset/key/1-forged-key/",
        everyone(OK),  # the page says the link is not valid
    ),
    Row(
        "account_reset_password_from_key_done",
        "GET",
        "/accounts/password/reset/key/done/",
        everyone(OK),
    ),
    Row(
        "account_confirm_login_code",
        "GET",
        "/accounts/login/code/confirm/",
        signed_in(to("/"), anonymous=to("/accounts/login/")),
    ),
    Row("account_confirm_email", "GET", "/accounts/confirm-email/forged-key/", everyone(OK)),
    Row(
        "socialaccount_login_cancelled", "GET", "/accounts/3rdparty/login/cancelled/", everyone(OK)
    ),
    Row(
        "socialaccount_login_error",
        "GET",
        "/accounts/3rdparty/login/error/",
        everyone(Expect(401)),  # allauth's "sign-in failed" page
    ),
    Row(
        "socialaccount_signup",
        "GET",
        "/accounts/3rdparty/signup/",
        everyone(to("/accounts/login/")),  # no sign-up through a provider is under way
    ),
    Row("socialaccount_connections", "GET", "/accounts/3rdparty/", signed_in(OK)),
    # allauth's old addresses redirect to the new ones.
    Row(
        "accounts/social/login/cancelled/",
        "GET",
        "/accounts/social/login/cancelled/",
        everyone(Expect(301, "/accounts/3rdparty/login/cancelled/")),
    ),
    Row(
        "accounts/social/login/error/",
        "GET",
        "/accounts/social/login/error/",
        everyone(Expect(301, "/accounts/3rdparty/login/error/")),
    ),
    Row(
        "accounts/social/signup/",
        "GET",
        "/accounts/social/signup/",
        everyone(Expect(301, "/accounts/3rdparty/signup/")),
    ),
    Row(
        "accounts/social/connections/",
        "GET",
        "/accounts/social/connections/",
        everyone(Expect(301, "/accounts/3rdparty/")),
    ),
]

# Patterns with no row, and why.
EXCLUDED = {
    # The sign-in providers' own endpoints (redirects to and from Facebook, Google, GitHub
    # and OpenID Connect) belong to allauth and the providers; they are tested with fake
    # providers in tests/socialgrid/accounts/test_social_login.py and test_providers.py.
    "facebook_login": "allauth provider",
    "facebook_callback": "allauth provider",
    "facebook_login_by_token": "allauth provider",
    "google_login": "allauth provider",
    "google_callback": "allauth provider",
    "google_login_by_token": "allauth provider",
    "github_login": "allauth provider",
    "github_callback": "allauth provider",
    "openid_connect_login": "allauth provider",
    "openid_connect_callback": "allauth provider",
}


# --- the Django admin: staff only -----------------------------------------------------------

# Every model registered with the admin. A new registration without an entry here fails the
# coverage test. The value: what a superuser gets on its add page (403 where the admin does
# not offer adding, e.g. hosts appear when a browser says hello).
ADMIN_MODELS = {
    "auth.group": 200,
    "auth.user": 200,
    "account.emailaddress": 200,
    "socialaccount.socialapp": 200,
    "socialaccount.socialtoken": 200,
    "socialaccount.socialaccount": 200,
    "compute.host": 403,
    "compute.hostapp": 403,
    "compute.volunteer": 403,
    "compute.project": 200,
    "compute.app": 200,
    "compute.appversion": 200,
    "compute.membership": 200,
    "compute.batch": 200,
    "compute.workunit": 403,
    "compute.replica": 403,
    "compute.assimilatedoutput": 403,
    "compute.creditentry": 403,
    "accounts.profile": 200,
    "feed.feeditem": 200,
    "feed.badge": 200,
    "invites.invitecode": 200,
    "invites.referral": 200,
    "invites.inviteemail": 403,
    "friends.friendship": 200,
    "friends.friendrequest": 200,
    "teams.team": 200,
    "teams.challenge": 200,
}

# Delete pages a superuser does not get (403): rows the engine owns (replicas, work units,
# credit) are never deleted by hand.
ADMIN_NO_DELETE = {
    "compute.hostapp",
    "compute.batch",
    "compute.workunit",
    "compute.replica",
    "compute.creditentry",
}


@dataclass(frozen=True)
class AdminRow:
    pattern: str
    path: Callable[[World], str]
    staff: Expect  # what staff get on GET; every other role gets ADMIN_LOGIN
    others: Expect = ADMIN_LOGIN
    others_post: int = 302  # what a POST by anyone else gets (always changing nothing)

    @property
    def id(self) -> str:
        return self.pattern


def _first_pk(label: str) -> Callable[[World], str]:
    def pk(world: World) -> str:
        return str(apps.get_model(label).objects.order_by("pk").first().pk)

    return pk


def admin_rows() -> list[AdminRow]:
    rows = [
        AdminRow("admin:index", lambda w: "/admin/", OK),
        # The sign-in page itself: anyone may see it; a signed-in non-staff volunteer is told
        # they are not authorised there.
        AdminRow(
            "admin:login", lambda w: "/admin/login/", to("/admin/"), others=OK, others_post=200
        ),
        AdminRow("admin:logout", lambda w: "/admin/logout/", NOT_ALLOWED, others=to("/admin/")),
        AdminRow("admin:password_change", lambda w: "/admin/password_change/", OK),
        AdminRow("admin:password_change_done", lambda w: "/admin/password_change/done/", OK),
        AdminRow("admin:autocomplete", lambda w: "/admin/autocomplete/", FORBIDDEN),
        AdminRow("admin:jsi18n", lambda w: "/admin/jsi18n/", OK),
        AdminRow(
            "admin:view_on_site",
            lambda w: f"/admin/r/{_content_type_id('teams.team')}/{w.team.pk}/",
            to("http://testserver/teams/night-owls/"),
        ),
        AdminRow("admin:app_list", lambda w: "/admin/compute/", OK),
        AdminRow("admin/(?P<url>.*)$", lambda w: "/admin/no-such-page/", NOT_FOUND),
        AdminRow(
            "admin:compute_volunteer_ban_user", lambda w: "/admin/compute/volunteer/ban-user/", OK
        ),
        AdminRow(
            "admin:compute_project_dashboard", lambda w: "/admin/compute/project/dashboard/", OK
        ),
    ]
    for label, add_status in ADMIN_MODELS.items():
        app_label, model = label.split(".")
        base = f"/admin/{app_label}/{model}/"
        name = f"admin:{app_label}_{model}"
        pk = _first_pk(label)
        rows += [
            AdminRow(f"{name}_changelist", lambda w, base=base: base, OK),
            AdminRow(f"{name}_add", lambda w, base=base: base + "add/", Expect(add_status)),
            AdminRow(f"{name}_change", lambda w, base=base, pk=pk: f"{base}{pk(w)}/change/", OK),
            AdminRow(f"{name}_history", lambda w, base=base, pk=pk: f"{base}{pk(w)}/history/", OK),
            AdminRow(
                f"{name}_delete",
                lambda w, base=base, pk=pk: f"{base}{pk(w)}/delete/",
                FORBIDDEN if label in ADMIN_NO_DELETE else OK,
            ),
            AdminRow(
                f"admin/{app_label}/{model}/<path:object_id>/",
                lambda w, base=base, pk=pk: f"{base}{pk(w)}/",
                to(f"{base}*"),
            ),
        ]
    rows.append(
        AdminRow(
            "admin:auth_user_password_change",
            lambda w: f"/admin/auth/user/{w.volunteer.pk}/password/",
            OK,
        )
    )
    return rows


def _content_type_id(label: str) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(apps.get_model(label)).id


ADMIN_MATRIX = admin_rows()


# --- the URL resolver -----------------------------------------------------------------------


def walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    """Every URL pattern under ``resolver``: (key, route, callback), the key being the
    pattern's namespaced name, or its full route when it has none."""
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from walk(pattern, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            if pattern.name:
                key = f"{namespace}:{pattern.name}" if namespace else pattern.name
            else:
                key = route
            yield key, route, pattern.callback


def resolved_patterns() -> set[str]:
    return {key for key, _, _ in walk(get_resolver())}


def test_every_url_pattern_has_a_row_or_a_reason():
    rows = {row.pattern for row in HTTP_MATRIX} | {row.pattern for row in ADMIN_MATRIX}
    patterns = resolved_patterns()

    assert patterns - rows - set(EXCLUDED) == set(), "URL patterns without a matrix row"
    assert rows - patterns == set(), "matrix rows for URL patterns that do not exist"
    assert set(EXCLUDED) <= patterns, "exclusions of URL patterns that do not exist"


def test_every_admin_registration_has_rows():
    registered = {
        f"{model._meta.app_label}.{model._meta.model_name}" for model in admin.site._registry
    }
    assert registered == set(ADMIN_MODELS)


# --- the HTTP matrix ------------------------------------------------------------------------


def client_for(world: World, role: str, row: Row) -> tuple[Client, dict[str, str]]:
    client = Client()
    headers: dict[str, str] = {}
    if row.api:
        if role != ANONYMOUS:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {world.keys[role]}"
    elif role != ANONYMOUS:
        client.force_login(world.user(role))
    return client, headers


def send(client: Client, row: Row, path: str, world: World, headers: dict[str, str]):
    if row.method == "GET":
        return client.get(path, **headers)
    data = row.data(world) if row.data else {}
    if row.method == "PATCH":
        return client.patch(path, json.dumps(data), content_type="application/json", **headers)
    if row.content_type == "application/json":
        return client.post(path, json.dumps(data), content_type=row.content_type, **headers)
    if row.content_type:
        return client.post(path, data, content_type=row.content_type, **headers)
    return client.post(path, data, **headers)


def check(response, expect: Expect, what: str, world: World) -> None:
    got = response.status_code
    location = response.get("Location", "")
    assert got == expect.status, f"{what}: got {got} {location}, expected {expect}"
    if expect.location is None:
        return
    wanted = expect.location.format(**vars(world))
    if wanted.endswith("*"):
        assert location.startswith(wanted[:-1]), f"{what}: redirected to {location}"
    else:
        assert location == wanted, f"{what}: redirected to {location}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", HTTP_MATRIX, ids=lambda row: row.id)
def test_http_matrix(row: Row, role: str, world: World):
    client, headers = client_for(world, role, row)
    path = row.path.format(**vars(world))
    expect = row.expect[role]
    before = snapshot()

    response = send(client, row, path, world, headers)

    check(response, expect, f"{role} {row.method} {path}", world)
    changed = changed_tables(before, snapshot())
    assert changed == set(expect.changes), f"{role} {row.method} {path} changed {changed}"
    if row.pattern in ("api:projects", "owners:projects") and response.status_code == 200:
        # Lists show one's own projects only.
        shown = world.project.name in response.content.decode()
        assert shown == (role == OWNER)


@pytest.mark.django_db
@pytest.mark.parametrize("row", ADMIN_MATRIX, ids=lambda row: row.id)
def test_admin_matrix(row: AdminRow, world: World):
    path = row.path(world)
    for role in ROLES:
        client = Client()
        if role != ANONYMOUS:
            client.force_login(world.user(role))
        expect = row.staff if role == STAFF else row.others
        before = snapshot()
        check(client.get(path), expect, f"{role} GET {path}", world)
        if role != STAFF:
            # Posting (a delete confirmation, a change form) does nothing either.
            response = client.post(path, {"post": "yes", "name": "x"})
            assert response.status_code == row.others_post, f"{role} POST {path}"
            if row.others == ADMIN_LOGIN:
                assert response["Location"].startswith("/admin/login/")
        assert changed_tables(before, snapshot()) == set(), f"{role} {path} changed something"


@pytest.mark.django_db
def test_staff_may_delete_through_the_admin_and_others_may_not(world: World):
    """The admin's unsafe actions themselves: only staff change anything."""
    path = f"/admin/teams/challenge/{world.challenge.pk}/delete/"
    for role in (ANONYMOUS, VOLUNTEER, FOUNDER, OWNER):
        client = Client()
        if role != ANONYMOUS:
            client.force_login(world.user(role))
        client.post(path, {"post": "yes"})
        assert type(world.challenge).objects.filter(pk=world.challenge.pk).exists(), role
    staff = Client()
    staff.force_login(world.staff)
    response = staff.post(path, {"post": "yes"})
    assert (response.status_code, response["Location"]) == (302, "/admin/teams/challenge/")
    assert not type(world.challenge).objects.filter(pk=world.challenge.pk).exists()


# --- the WebSocket routes -------------------------------------------------------------------

# Every WebSocket route, and who may listen there.
WS_ROUTES = {
    "ws/worker/": "anyone: signed in, or anonymously when hello names a project (below)",
    "ws/projects/<slug:slug>/": "anyone, for a public project; nobody for another (4004)",
    "ws/feed/": "signed-in volunteers, on their own feed only; anonymous visitors get 4001",
}


def test_every_websocket_route_has_a_row():
    from socialgrid.routing import websocket_urlpatterns

    assert {str(route.pattern) for route in websocket_urlpatterns} == set(WS_ROUTES)


# The worker protocol: what each client message gets, for an anonymous visitor (hello names
# the project) and for each signed-in role. Acting on a replica leased to another host is
# refused with "not_yours" and changes nothing, whoever asks, the project's owner included.
#
#   message type -> (on one's own host or replica, on another host's replica)
WORKER_MATRIX: dict[str, tuple[str, str | None]] = {
    "hello": ("welcome", "welcome with a new host"),  # another host's id, without its token
    "request": ("assign", None),  # a lease is always for the asking host
    "progress": ("ack", "not_yours"),
    "result": ("ack", "not_yours"),
    "error": ("ack", "not_yours"),
    "heartbeat": ("heartbeat", None),
}
# A hello without a project: signed-in volunteers compute for the projects they joined;
# an anonymous visitor has nothing to compute for and is closed with 4001.
HELLO_WITHOUT_PROJECT = {ANONYMOUS: 4001, **dict.fromkeys(ROLES[1:], "welcome")}


def test_every_client_message_type_has_a_row():
    client_types = set(json.loads(SCHEMA.read_text())["client"])
    assert set(WORKER_MATRIX) == client_types


def _replica_message(kind: str, task: dict) -> dict:
    message = {"type": kind, "replica": task["replica"], "lease": task["lease"]}
    if kind == "result":
        return {**message, "output": {"y": 0}, "cpu_time": 1.0}
    if kind == "error":
        return {**message, "reason": "out of memory"}
    return {**message, "fraction": 0.5}


def _replica_state(replica_id: int) -> tuple:
    return Replica.objects.filter(id=replica_id).values_list(
        "host_id", "server_state", "outcome", "output", "deadline", "error_reason"
    )[0]


@pytest.fixture
def ws_world(transactional_db, user_factory, project_factory, settings) -> World:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "socialgrid-authorisation-matrix-ws",
        }
    }
    return build_world(user_factory, project_factory)


def _cookie(world: World, role: str) -> str | None:
    if role == ANONYMOUS:
        return None
    client = Client()
    client.force_login(world.user(role))
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", list(WORKER_MATRIX))
async def test_worker_matrix(kind: str, role: str, ws_world: World):
    from tests.compute.protocol_client import Client as WorkerClient

    own, others = WORKER_MATRIX[kind]
    world = ws_world
    cookie = await sync_to_async(_cookie)(world, role)
    # Another host (an anonymous visitor's) holds a replica first.
    victim = WorkerClient()
    victim_welcome = await victim.hello(project=world.project.slug)
    (victim_task,) = (await victim.ask({"type": "request", "n": 1}))["tasks"]
    before = await sync_to_async(_replica_state)(victim_task["replica"])

    actor = WorkerClient(cookie=cookie)
    if kind == "hello":
        welcome = await actor.hello(project=world.project.slug)
        assert welcome["type"] == own
        assert welcome["user"] == (None if role == ANONYMOUS else world.user(role).username)
        await actor.close()
        # Naming another host without its token gets a host of one's own.
        thief = WorkerClient(cookie=cookie)
        stolen = await thief.hello(project=world.project.slug, host=victim_welcome["host"])
        assert stolen["host"] != victim_welcome["host"]
        assert stolen["resume"] == []
        await thief.close()
    else:
        await actor.hello(project=world.project.slug)
        if kind == "heartbeat":
            assert (await actor.ask({"type": "heartbeat"}))["type"] == own
        elif kind == "request":
            assign = await actor.ask({"type": "request", "n": 1})
            assert assign["type"] == own
            assert [t["replica"] for t in assign["tasks"]] != [victim_task["replica"]]
        else:
            # Another host's replica, with its lease token: refused, nothing changes.
            reply = await actor.ask(_replica_message(kind, victim_task))
            assert (reply["type"], reply["code"], reply["replica"]) == (
                "error",
                others,
                victim_task["replica"],
            )
            assert await sync_to_async(_replica_state)(victim_task["replica"]) == before
            # One's own replica is fine.
            (task,) = (await actor.ask({"type": "request", "n": 1}))["tasks"]
            reply = await actor.ask(_replica_message(kind, task))
            assert (reply["type"], reply["of"]) == (own, kind)
        await actor.close()
    # The victim still holds its replica, untouched.
    assert await sync_to_async(_replica_state)(victim_task["replica"]) == before
    await victim.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("role", ROLES)
async def test_worker_hello_without_a_project(role: str, ws_world: World):
    from tests.compute.protocol_client import Client as WorkerClient

    expected = HELLO_WITHOUT_PROJECT[role]
    client = WorkerClient(cookie=await sync_to_async(_cookie)(ws_world, role))
    await client.connect()
    await client.send({"type": "hello", "v": 1, "capabilities": {"cores": 1}})
    reply = await client.receive()
    if expected == "welcome":
        assert reply["type"] == "welcome"
        await client.close()
    else:
        assert reply["type"] == "notice"
        assert await client.closed_with() == expected


# The live project counters: (public project, a project that is not public) per role.
PROJECT_SOCKET = dict.fromkeys(ROLES, ("stats", 4004))


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("role", ROLES)
async def test_project_socket_matrix(role: str, ws_world: World):
    from tests.compute.protocol_client import Client as WorkerClient

    public, hidden = PROJECT_SOCKET[role]
    cookie = await sync_to_async(_cookie)(ws_world, role)
    listener = WorkerClient(path=f"/ws/projects/{ws_world.project.slug}/", cookie=cookie)
    await listener.connect()
    assert json.loads(await listener.ws.receive_from(3))["type"] == public
    await listener.close()

    await sync_to_async(Project.objects.filter(id=ws_world.project.id).update)(is_public=False)
    refused = WorkerClient(path=f"/ws/projects/{ws_world.project.slug}/", cookie=cookie)
    connected, code = await refused.ws.connect()
    assert (connected, code) == (False, hidden)
    await refused.ws.disconnect()


# The live feed: who may open it, and whose items reach it.
FEED_SOCKET = {ANONYMOUS: 4001, **dict.fromkeys(ROLES[1:], "own items only")}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("role", ROLES)
async def test_feed_socket_matrix(role: str, ws_world: World):
    from channels.layers import get_channel_layer
    from channels.testing import WebsocketCommunicator

    from compute import notify
    from socialgrid.asgi import application

    cookie = await sync_to_async(_cookie)(ws_world, role)
    headers = [(b"origin", b"http://testserver")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    ws = WebsocketCommunicator(application, "/ws/feed/", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    if FEED_SOCKET[role] == 4001:
        assert (await ws.receive_output(3))["code"] == 4001
        await ws.disconnect()
        return
    # Asking for someone else's feed is ignored: the group comes from the session.
    other = ws_world.member if role != VOLUNTEER else ws_world.founder
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "user": other.pk}))
    layer = get_channel_layer()
    item = {"id": 1, "verb": "badge", "text": "someone else's", "parts": [], "created_at": ""}
    await layer.group_send(notify.user_group(other.pk), {"type": "feed.item", "item": item})
    assert await ws.receive_nothing(0.3)
    mine = {**item, "id": 2, "text": "mine"}
    user = ws_world.user(role)
    await layer.group_send(notify.user_group(user.pk), {"type": "feed.item", "item": mine})
    assert json.loads(await ws.receive_from(3)) == {"type": "item", "item": mine}
    await ws.disconnect()
