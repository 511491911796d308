"""Cross-site scripting: every text a user can set is escaped wherever a page shows it.

``FIELDS`` lists every user-settable text field with the pages that render it. Each field
holds its own tagged copy of a script-and-attribute-breaking payload (written straight into
the database, so the escaping is tested rather than some form's validation); every page is
fetched as a viewer who sees it, and each must show the escaped text and never the raw one.
A guard fails when a text field appears on the user-facing models without being listed here
or in ``NOT_RENDERED`` with a reason. The pages' scripts insert server data as text only
(``test_scripts_never_insert_server_text_as_html``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.core import mail
from django.db import models
from django.test import Client
from django.utils.html import escape

import pytest

from compute.models import Host, Membership, Replica, Volunteer
from compute.states import ServerState
from socialgrid.feed.models import FeedItem, Verb
from socialgrid.teams.models import Team, TeamMember
from tests.socialgrid.test_authorisation_matrix import ANONYMOUS, STAFF, World, build_world

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>"


def value(tag: str) -> str:
    """The payload, tagged so that each field's copy can be told apart."""
    return f"{tag}{PAYLOAD}"


@dataclass(frozen=True)
class Field:
    label: str  # app_label.Model.field
    tag: str
    pages: tuple[tuple[str, str], ...]  # (viewer role, path) of every page that shows it
    stored: str | None = None  # the stored text, when it is not just value(tag)


def url_value(tag: str) -> str:
    return f"https://example.org/{tag}?{PAYLOAD}"


ADMIN = STAFF
FIELDS = [
    Field(
        "accounts.Profile.display_name",
        "DN",
        (
            (ANONYMOUS, "/u/vera/"),
            ("volunteer", "/profile/"),
            (ANONYMOUS, "/projects/alpha/"),
            (ANONYMOUS, "/leaderboards/"),
            ("volunteer", "/feed/"),
            ("founder", "/friends/"),  # the request he sent to Vera
            (ANONYMOUS, "/teams/night-owls/"),
            (ANONYMOUS, "/invite/{invite.code}/"),
            (ADMIN, "/admin/accounts/profile/"),
        ),
    ),
    Field(
        "accounts.Profile.bio",
        "BI",
        ((ANONYMOUS, "/u/vera/"), ("volunteer", "/profile/")),
    ),
    Field(
        "accounts.Profile.avatar_url",
        "AV",
        ((ANONYMOUS, "/u/vera/"), ("volunteer", "/profile/")),
        stored=url_value("AV"),
    ),
    Field(
        "teams.Team.name",
        "TN",
        (
            (ANONYMOUS, "/teams/"),
            (ANONYMOUS, "/teams/night-owls/"),
            ("founder", "/teams/night-owls/edit/"),
            (ANONYMOUS, "/teams/challenges/{challenge.slug}/"),
            (ANONYMOUS, "/leaderboards/?board=teams"),
            (ADMIN, "/admin/teams/team/"),
        ),
    ),
    Field(
        "teams.Team.description",
        "TD",
        ((ANONYMOUS, "/teams/night-owls/"), ("founder", "/teams/night-owls/edit/")),
    ),
    Field(
        "teams.Team.url",
        "TU",
        ((ANONYMOUS, "/teams/night-owls/"), ("founder", "/teams/night-owls/edit/")),
        stored=url_value("TU"),
    ),
    Field(
        "teams.Challenge.name",
        "CN",
        (
            (ANONYMOUS, "/teams/challenges/"),
            (ANONYMOUS, "/teams/challenges/{challenge.slug}/"),
            (ANONYMOUS, "/teams/night-owls/"),
            (ADMIN, "/admin/teams/challenge/"),
        ),
    ),
    Field(
        "teams.Challenge.description",
        "CD",
        ((ANONYMOUS, "/teams/challenges/{challenge.slug}/"),),
    ),
    Field(
        "feed.FeedItem.data",
        "FD",
        (("founder", "/feed/"),),
    ),
    Field(
        "compute.Project.name",
        "PN",
        (
            (ANONYMOUS, "/"),
            (ANONYMOUS, "/projects/alpha/"),
            (ANONYMOUS, "/embed/alpha/"),
            (ANONYMOUS, "/leaderboards/?project=alpha"),
            (ANONYMOUS, "/invite/{invite.code}/"),
            ("volunteer", "/invite/?project=alpha"),
            ("owner", "/owners/"),
            ("owner", "/owners/projects/alpha/"),
            (ADMIN, "/admin/compute/project/"),
        ),
    ),
    Field(
        "compute.Project.description",
        "PD",
        ((ANONYMOUS, "/"), (ANONYMOUS, "/projects/alpha/")),
    ),
    Field(
        "compute.App.title",
        "AT",
        (("owner", "/owners/projects/alpha/"), (ADMIN, "/admin/compute/app/")),
    ),
    Field(
        "compute.Batch.name",
        "BN",
        (
            (ANONYMOUS, "/projects/alpha/"),
            ("owner", "/owners/projects/alpha/"),
            # The dashboard's live part, which owners.js puts in the page as HTML.
            ("owner", "/owners/projects/alpha/live/"),
            (ADMIN, "/admin/compute/batch/"),
        ),
    ),
    Field(
        "compute.Host.name",
        "HN",
        ((ANONYMOUS, "/leaderboards/?board=hosts"), (ADMIN, "/admin/compute/host/")),
    ),
    Field(
        "compute.Host.user_agent",
        "UA",
        ((ADMIN, "/admin/compute/host/{host.pk}/change/"),),
    ),
    Field(
        "compute.Replica.error_reason",
        "ER",
        ((ADMIN, "/admin/compute/replica/{replica.pk}/change/"),),
    ),
    Field(
        "compute.Replica.output",
        "RO",
        ((ADMIN, "/admin/compute/replica/{replica.pk}/change/"),),
    ),
    Field(
        "compute.WorkUnit.input",
        "WI",
        ((ADMIN, "/admin/compute/workunit/{replica.workunit_id}/change/"),),
    ),
    Field("api.ApiToken.name", "KN", (("owner", "/owners/tokens/"),)),
    Field(
        "auth.User.first_name",
        "FN",
        ((ADMIN, "/admin/auth/user/{volunteer.pk}/change/"),),
    ),
    Field(
        "auth.User.last_name",
        "LN",
        ((ADMIN, "/admin/auth/user/{volunteer.pk}/change/"),),
    ),
]

# Text fields that are not rendered from user input, and why.
NOT_RENDERED = {
    "auth.User.username": "the username validator allows letters, digits and @.+-_ only",
    "auth.User.email": "validated as an e-mail address by allauth and the admin",
    "auth.User.password": "a hash, never shown",
    "auth.Group.name": "set by staff in the admin only",
    "auth.Permission.name": "made by migrations",
    "auth.Permission.codename": "made by migrations",
    "accounts.Profile.privacy": "a choice",
    "feed.FeedItem.verb": "a choice",
    "feed.Badge.kind": "a choice",
    "friends.FriendRequest.state": "a choice",
    "invites.InviteCode.code": "made by the server",
    "teams.Team.slug": "made by the server from the name (slugify)",
    "teams.Challenge.slug": "made by the server from the name (slugify)",
    "compute.Host.platform_class": "the protocol accepts [a-z0-9_.-]{1,40} only",
    "compute.Project.slug": "a slug (validated by the API and the admin)",
    "compute.Project.credit_policy": "a choice",
    "compute.App.name": "a slug (validated by the API and the admin)",
    "compute.App.description": "not shown on any page but the admin's form (escaped there)",
    "compute.App.comparator": "a choice",
    "compute.App.comparator_path": "a Python path that must import on the server",
    "compute.App.reference_path": "a Python path that must import on the server",
    "compute.App.assimilator_path": "a Python path that must import on the server",
    "compute.AppVersion.kernel": "the owner's JavaScript, served as a module to workers only",
    "compute.AppVersion.kernel_sha256": "computed by the server",
    "compute.AppVersion.wasm_sha256": "computed by the server",
    "compute.Membership.state": "a choice",
    "compute.Batch.state": "a choice",
    "compute.WorkUnit.name": "made by the server from the project slug and ids",
    "compute.WorkUnit.replication": "a choice",
    "compute.WorkUnit.hr_class": "a platform class (see Host.platform_class)",
    "compute.WorkUnit.assimilate_state": "a choice",
    "compute.WorkUnit.assimilate_error": "the server's own exception text, admin only",
    "compute.WorkUnit.file_delete_state": "a choice",
    "compute.Replica.server_state": "a choice",
    "compute.Replica.outcome": "a choice",
    "compute.Replica.validate_state": "a choice",
    "compute.Replica.lease_token": "made by the server",
    "compute.AssimilatedOutput.name": "a work unit's name (made by the server)",
    "compute.AssimilatedOutput.input": "downloaded as JSON Lines or CSV attachments (nosniff)",
    "compute.AssimilatedOutput.output": "downloaded as JSON Lines or CSV attachments (nosniff)",
    "api.ApiToken.prefix": "made by the server",
    "api.ApiToken.key_hash": "made by the server",
}

USER_FACING_APPS = {"auth", "accounts", "feed", "friends", "invites", "teams", "leaderboards"}
USER_FACING_APPS |= {"compute", "api"}
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def test_every_text_field_is_listed():
    found = set()
    for model in apps.get_models():
        if model._meta.app_label not in USER_FACING_APPS:
            continue
        for f in model._meta.concrete_fields:
            if isinstance(f, TEXT_FIELDS):
                found.add(f"{model._meta.app_label}.{model.__name__}.{f.name}")
    listed = {f.label for f in FIELDS}
    assert not listed & set(NOT_RENDERED)
    assert found == listed | set(NOT_RENDERED)


# --- the world, with every field holding its payload ----------------------------------------


@pytest.fixture
def world(user_factory, project_factory, settings) -> World:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "socialgrid-xss",
        }
    }
    world = build_world(user_factory, project_factory)
    vera = world.volunteer.profile
    vera.display_name, vera.bio, vera.avatar_url = value("DN"), value("BI"), url_value("AV")
    vera.save()
    # Founder and team show up on Vera's pages too; the founder's name is another copy.
    Team.objects.filter(id=world.team.id).update(
        name=value("TN"), description=value("TD"), url=url_value("TU")
    )
    TeamMember.objects.get_or_create(team=world.team, user=world.volunteer)
    type(world.challenge).objects.filter(id=world.challenge.id).update(
        name=value("CN"), description=value("CD")
    )
    FeedItem.objects.filter(verb=Verb.FOUNDED_TEAM, actor=world.founder).update(
        data={"team_name": value("FD"), "team_slug": world.team.slug}
    )
    world.project.name, world.project.description = value("PN"), value("PD")
    world.project.save()
    world.project.apps.update(title=value("AT"))
    type(world.batch).objects.filter(id=world.batch.id).update(name=value("BN"))
    world.owner_token.name = value("KN")
    world.owner_token.save()
    type(world.volunteer).objects.filter(id=world.volunteer.id).update(
        first_name=value("FN")[:150], last_name=value("LN")[:150]
    )

    # Credit, so that the volunteer, her computer and her team are on the boards.
    host = Host.objects.get(user=world.volunteer)
    Host.objects.filter(id=host.id).update(
        name=value("HN"), user_agent=value("UA"), total_credit=5.0, rac=1.0
    )
    Volunteer.objects.filter(user=world.volunteer).update(total_credit=5.0, rac=1.0)
    Membership.objects.filter(user=world.volunteer).update(total_credit=5.0, rac=1.0)
    Team.objects.filter(id=world.team.id).update(total_credit=5.0, rac=1.0)
    replica = Replica.objects.filter(server_state=ServerState.UNSENT).order_by("id").first()
    Replica.objects.filter(id=replica.id).update(
        host=host, error_reason=value("ER"), output={"y": value("RO")}
    )
    replica.workunit.__class__.objects.filter(id=replica.workunit_id).update(
        input={"x": value("WI")}
    )
    world.host = host
    world.replica = replica
    return world


def fetch(world: World, role: str, path: str) -> str:
    client = Client()
    if role != ANONYMOUS:
        client.force_login(world.user(role))
    response = client.get(path.format(**vars(world)))
    assert response.status_code == 200, f"{role} {path}: {response.status_code}"
    return response.content.decode()


def escaped_forms(text: str) -> list[str]:
    """How a page may show the text escaped: its beginning up to the end of the script tag
    (long texts are cut short on some pages), by Django's escape or as JSON in the admin."""
    head = text[: text.index("</script>") + len("</script>")]
    return [escape(head), escape(head.replace('"', '\\"'))]


@pytest.mark.django_db
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.label)
def test_the_field_is_escaped_on_every_page_that_shows_it(field: Field, world: World):
    shown = field.stored or value(field.tag)
    for role, path in field.pages:
        html = fetch(world, role, path)
        assert PAYLOAD not in html, f"{path} shows {field.label} unescaped"
        assert "<script>alert(1)" not in html, path
        assert "<img src=x" not in html, path
        assert any(form in html for form in escaped_forms(shown)), (
            f"{path} does not show {field.label}"
        )


@pytest.mark.django_db
def test_the_invitation_email_escapes_the_message_and_names(world: World, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = Client()
    client.force_login(world.volunteer)
    response = client.post(
        "/invite/email/",
        {"addresses": "friend@example.org", "message": value("IM"), "project": "alpha"},
    )
    assert response.status_code == 302
    (message,) = mail.outbox
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert PAYLOAD not in html
    for tag in ("IM", "DN", "PN"):
        assert escape(value(tag)) in html, tag
    assert "\n" not in message.subject


@pytest.mark.django_db
def test_a_display_name_with_markup_is_saved_as_text_and_shown_escaped(client, user_factory):
    """Through the real form: markup is kept as typed (it is text), and escaped on output."""
    user = user_factory("ada")
    client.force_login(user)
    response = client.post(
        "/profile/", {"display_name": value("X")[:60], "bio": value("Y"), "privacy": "named"}
    )
    assert response.status_code == 302
    html = client.get("/u/ada/").content.decode()
    assert PAYLOAD[:40] not in html
    assert escape(value("Y")) in html


# --- the pages' scripts ---------------------------------------------------------------------

# Inserting HTML from the server is allowed only where the server rendered it with every
# value escaped, and where a test above fetches that HTML with payloads in it.
HTML_SINKS_ALLOWED = {
    ("owners.js", "live.innerHTML = await response.text();"): "/owners/projects/<slug>/live/",
}
SINK = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment"
)


def test_scripts_never_insert_server_text_as_html():
    found = set()
    static = ROOT / "static" / "socialgrid"
    for script in static.rglob("*.js"):
        if "worker" in script.relative_to(static).parts:
            continue
        for line in script.read_text().splitlines():
            if SINK.search(line):
                found.add((str(script.relative_to(static)), line.strip()))
    assert found == set(HTML_SINKS_ALLOWED)
