from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import timedelta

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import pytest

from compute.assimilation import assimilate_workunit, store_output
from compute.catalog import catalog
from compute.models import (
    App,
    AppVersion,
    AssimilatedOutput,
    Batch,
    CreditEntry,
    Host,
    HostApp,
    Membership,
    Project,
    Replica,
    Volunteer,
    WorkUnit,
)
from compute.results import record_error
from compute.scheduler import lease_replicas
from compute.states import AssimilateState, BatchState, ErrorMask, ServerState
from compute.submission import create_batch
from compute.transitioner import transition_workunit

pytestmark = pytest.mark.django_db

MODELS = [
    Project, App, AppVersion, Membership, Host, HostApp, Volunteer, Batch, WorkUnit, Replica,
    AssimilatedOutput, CreditEntry,
]  # fmt: skip


def url(model: type, view: str, *args: object) -> str:
    return reverse(f"admin:compute_{model._meta.model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    """The messages shown on the page a redirect led to (which marks them read)."""
    return [str(m) for m in response.context["messages"]]


def act(client: Client, model: type, action: str, objects: list, follow: bool = True) -> object:
    data = {"action": action, "_selected_action": [o.pk for o in objects]}
    return client.post(url(model, "changelist"), data, follow=follow)


def submit(project: Project, n: int = 2, **kwargs: object) -> Batch:
    inputs = [{"x": i} for i in range(n)]
    return create_batch(project, project.apps.get(), inputs, name="test", **kwargs)


@pytest.fixture
def project(project_factory) -> Project:
    return project_factory(slug="squares", name="Squares")


@pytest.fixture
def failed_workunit(project_factory, host_factory) -> WorkUnit:
    """A work unit that failed with too many errors and was counted by its batch."""
    now = timezone.now()
    project = project_factory(min_quorum=1, target_nresults=1, max_error_results=1)
    (wu,) = submit(project, 1).workunits.all()
    for host in (host_factory(project), host_factory(project)):
        (job,) = lease_replicas(host, 1, now=now)
        assert record_error(host, job.replica_id, job.lease_token, "crash", now).accepted
        transition_workunit(wu.id, now)
    assert assimilate_workunit(wu.id, now) == "done"
    wu.refresh_from_db()
    assert wu.error_mask == ErrorMask.TOO_MANY_ERRORS
    return wu


# --- Every model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_a_changelist(admin_client, model):
    assert admin_client.get(url(model, "changelist")).status_code == 200


def test_every_change_page_renders(admin_client, failed_workunit, host_factory):
    wu = failed_workunit
    store_output(wu, {"y": 1})
    CreditEntry.objects.create(
        replica_id=1, workunit_id=wu.id, project=wu.project, amount=1.0, granted_at=timezone.now()
    )
    Volunteer.objects.create(user=host_factory().user)
    for model in MODELS:
        obj = model.objects.first()
        assert obj is not None, model
        assert admin_client.get(url(model, "change", obj.pk)).status_code == 200, model


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_only_what_an_operator_creates_has_an_add_page(admin_client, model):
    expected = 200 if model in (Project, App, AppVersion, Membership, Batch) else 403

    assert admin_client.get(url(model, "add")).status_code == expected


def test_a_project_is_added_with_its_policy_and_keeps_its_slug(admin_client, admin_user):
    policy = {
        "min_quorum": 3, "target_nresults": 3, "max_error_results": 3, "max_total_results": 8,
        "max_success_results": 5, "delay_bound": 600, "max_deadline_extension": 60,
        "credit_policy": "avg", "max_credit_per_replica": 50, "daily_quota_per_core": 100,
    }  # fmt: skip
    data = {"name": "Primes", "slug": "primes", "owner": admin_user.pk, "is_active": "on", **policy}

    assert admin_client.post(url(Project, "add"), data).status_code == 302
    project = Project.objects.get(slug="primes")
    assert (project.min_quorum, project.credit_policy) == (3, "avg")

    data = {**data, "slug": "renamed", "target_nresults": 2}
    response = admin_client.post(url(Project, "change", project.pk), data)

    assert response.status_code == 200  # target below the quorum: the model's clean() says no
    assert "Must be at least the minimum quorum." in response.context["errors"][0]
    data["target_nresults"] = 4
    assert admin_client.post(url(Project, "change", project.pk), data).status_code == 302
    project.refresh_from_db()
    assert (project.slug, project.target_nresults) == ("primes", 4)


def test_changelist_search_works_on_every_model(admin_client, project):
    submit(project)
    for model in MODELS:
        response = admin_client.get(url(model, "changelist"), {"q": "squares"})
        assert response.status_code == 200, model


# --- The ledger and the engine's rows are not edited here ---------------------------------------


@pytest.fixture
def credit_entry(project) -> CreditEntry:
    return CreditEntry.objects.create(
        replica_id=7, workunit_id=3, project=project, amount=2.5, granted_at=timezone.now()
    )


def test_credit_entries_cannot_be_added(admin_client, credit_entry):
    assert admin_client.get(url(CreditEntry, "add")).status_code == 403
    assert admin_client.post(url(CreditEntry, "add"), {"amount": 1}).status_code == 403


def test_credit_entries_cannot_be_changed(admin_client, credit_entry):
    response = admin_client.get(url(CreditEntry, "change", credit_entry.pk))
    assert response.status_code == 200
    assert b'name="_save"' not in response.content

    response = admin_client.post(url(CreditEntry, "change", credit_entry.pk), {"amount": 99})
    assert response.status_code == 403
    credit_entry.refresh_from_db()
    assert credit_entry.amount == 2.5


def test_credit_entries_cannot_be_deleted(admin_client, credit_entry):
    assert admin_client.post(url(CreditEntry, "delete", credit_entry.pk)).status_code == 403
    response = admin_client.get(url(CreditEntry, "changelist"))
    assert response.context["action_form"] is None  # not even "delete selected"
    act(admin_client, CreditEntry, "delete_selected", [credit_entry])
    assert CreditEntry.objects.filter(pk=credit_entry.pk).exists()


def test_replicas_are_view_only(admin_client, project):
    submit(project, 1)
    replica = Replica.objects.first()

    response = admin_client.post(url(Replica, "change", replica.pk), {"server_state": "over"})

    assert response.status_code == 403
    replica.refresh_from_db()
    assert replica.server_state == ServerState.UNSENT


def test_work_unit_states_are_read_only(admin_client, project):
    wu = submit(project, 1).workunits.get()

    response = admin_client.get(url(WorkUnit, "change", wu.pk))

    assert b'name="_save"' not in response.content
    assert admin_client.post(url(WorkUnit, "change", wu.pk), {"error_mask": 2}).status_code == 403


def test_a_released_app_version_keeps_its_kernel(admin_client, project):
    version = AppVersion.objects.get()
    kernel = version.kernel

    response = admin_client.post(
        url(AppVersion, "change", version.pk),
        {"kernel": "export function run() {}", "version": 9, "deprecated": "on"},
    )

    assert response.status_code == 302
    version.refresh_from_db()
    assert (version.kernel, version.version, version.deprecated) == (kernel, 1, True)


# --- Batches ------------------------------------------------------------------------------------


def test_cancel_action_cancels_the_batch_and_tells_the_admin(admin_client, project):
    batch = submit(project, 3)

    response = act(admin_client, Batch, "cancel", [batch])

    assert response.redirect_chain == [(url(Batch, "changelist"), 302)]
    batch.refresh_from_db()
    assert batch.state == BatchState.CANCELLED
    assert set(batch.workunits.values_list("error_mask", flat=True)) == {ErrorMask.CANCELLED}
    assert messages_of(response) == ["Cancelled 1 batch (3 work units stopped)."]


def test_cancel_action_leaves_finished_batches_alone(admin_client, project):
    done = submit(project, 1)
    Batch.objects.filter(pk=done.pk).update(state=BatchState.COMPLETED)

    response = act(admin_client, Batch, "cancel", [done])

    done.refresh_from_db()
    assert done.state == BatchState.COMPLETED
    assert messages_of(response) == ["1 batch had already finished."]


def test_create_work_units_action_opens_the_form_for_the_same_app(admin_client, project):
    batch = submit(project, 1, priority=3)

    response = act(admin_client, Batch, "create_workunits", [batch], follow=False)

    app = project.apps.get()
    assert response.status_code == 302
    assert response["Location"] == url(Batch, "add") + f"?app={app.pk}&priority=3"
    form = admin_client.get(response["Location"]).context["form"]
    assert (form.initial["app"], form.initial["priority"]) == (str(app.pk), "3")


def test_create_work_units_action_wants_batches_of_one_app(admin_client, project_factory):
    a, b = submit(project_factory()), submit(project_factory())

    response = act(admin_client, Batch, "create_workunits", [a, b])

    assert response.redirect_chain == [(url(Batch, "changelist"), 302)]
    assert messages_of(response) == ["Choose batches of one app."]


def test_download_action_streams_the_results_as_json_lines(admin_client, project):
    batch = submit(project, 2)
    first = batch.workunits.order_by("id").first()
    store_output(first, {"y": 0})

    response = act(admin_client, Batch, "download_results", [batch])

    assert response["Content-Type"] == "application/x-ndjson"
    assert f"test-{batch.pk}.jsonl" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"workunit": first.name, "input": {"x": 0}, "output": {"y": 0}}
    ]


def test_batches_cannot_be_deleted(admin_client, project):
    batch = submit(project, 1)

    assert admin_client.post(url(Batch, "delete", batch.pk), {"post": "yes"}).status_code == 403
    assert Batch.objects.filter(pk=batch.pk).exists()


# --- Submitting a batch -------------------------------------------------------------------------


def range_data(app: App, **overrides: object) -> dict:
    data = {
        "app": app.pk,
        "name": "sweep",
        "priority": 2,
        "source": "range",
        "template": '{"scale": 1}',
        "parameter": "x",
        "start": 0,
        "stop": 1,
        "step": 0.25,
    }
    return {**data, **overrides}


def test_the_add_batch_page_is_the_submission_form(admin_client, project):
    response = admin_client.get(url(Batch, "add"))

    assert response.status_code == 200
    assert response.templates[0].name == "admin/compute/form_page.html"
    assert b'enctype="multipart/form-data"' in response.content
    assert b"Squares / Square (squares/square)" in response.content


def test_submitting_a_range_creates_a_batch(admin_client, admin_user, project):
    app = project.apps.get()

    response = admin_client.post(url(Batch, "add"), range_data(app), follow=True)

    batch = Batch.objects.get()
    assert response.redirect_chain == [(url(Batch, "change", batch.pk), 302)]
    assert (batch.name, batch.priority, batch.app, batch.submitter) == ("sweep", 2, app, admin_user)
    inputs = [wu.input for wu in batch.workunits.order_by("id")]
    assert inputs == [{"scale": 1, "x": v} for v in (0, 0.25, 0.5, 0.75)]
    assert messages_of(response) == ["Created batch “sweep” with 4 work units."]


def test_submitting_a_json_lines_file_creates_a_batch(admin_client, project):
    upload = SimpleUploadedFile("in.jsonl", b'{"x": 1}\n\n{"x": 2}\n')
    data = range_data(project.apps.get(), source="jsonl", file=upload, parameter="")

    response = admin_client.post(url(Batch, "add"), data)

    assert response.status_code == 302
    batch = Batch.objects.get()
    assert [wu.input for wu in batch.workunits.order_by("id")] == [{"x": 1}, {"x": 2}]


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"template": "{not json"}, "template", "Not valid JSON"),
        ({"template": "[1, 2]"}, "template", "Must be a JSON object"),
        ({"step": 0}, "step", "The step must not be zero."),
        ({"parameter": ""}, "parameter", "Required for a parameter range."),
        ({"start": 1, "stop": 1}, "__all__", "the range is empty"),
        ({"start": 0, "stop": 1, "step": -1}, "__all__", "the range is empty"),
        ({"source": "jsonl"}, "file", "Choose a JSON Lines file."),
        ({"priority": 5000}, "priority", "less than or equal to 1000"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "zero-step",
        "no-parameter",
        "empty",
        "wrong-way",
        "no-file",
        "priority",
    ],
)
def test_bad_input_shows_a_form_error_and_creates_nothing(
    admin_client, project, overrides, field, error
):
    response = admin_client.post(url(Batch, "add"), range_data(project.apps.get(), **overrides))

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert error in " ".join(errors[field])
    assert error.encode() in response.content
    assert not Batch.objects.exists()
    assert not WorkUnit.objects.exists()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b'{"x": 1}\n{"x": \n', "line 2: not valid JSON"),
        (b'{"x": 1}\n\xff\n', "line 2: not UTF-8 text"),
        (b"\n\n", "no inputs"),
        (b'{"x": 1}\n{"x": NaN}\n', "line 2: not valid JSON (NaN is not a JSON number)"),
        (b'{"x": 1}\n{"x": "a\\u0000b"}\n', "line 2: contains a NUL character"),
    ],
    ids=["bad-json", "not-utf8", "empty", "nan", "nul"],
)
def test_a_bad_json_lines_file_shows_the_line_and_creates_nothing(
    admin_client, project, content, error
):
    upload = SimpleUploadedFile("in.jsonl", content)
    data = range_data(project.apps.get(), source="jsonl", file=upload)

    response = admin_client.post(url(Batch, "add"), data)

    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors["file"])
    assert not Batch.objects.exists()


def test_submitting_needs_the_add_permission(client, user_factory, project):
    staff = user_factory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_batch"))
    client.force_login(staff)

    assert client.get(url(Batch, "add")).status_code == 403
    assert client.post(url(Batch, "add"), range_data(project.apps.get())).status_code == 403
    assert not Batch.objects.exists()


def test_the_app_list_links_to_submitting_a_batch_for_the_app(admin_client, project):
    app = project.apps.get()

    response = admin_client.get(url(App, "changelist"))

    assert f'href="{url(Batch, "add")}?app={app.pk}"'.encode() in response.content


# --- Work units ---------------------------------------------------------------------------------


def test_retry_action_gives_a_failed_work_unit_another_round(admin_client, failed_workunit):
    wu = failed_workunit

    response = act(admin_client, WorkUnit, "retry", [wu])

    wu.refresh_from_db()
    assert wu.error_mask == 0
    assert wu.assimilate_state == AssimilateState.INIT
    assert wu.replicas.filter(server_state=ServerState.UNSENT).count() == 1
    assert wu.batch.n_errored == 0
    assert messages_of(response) == ["Retried 1 work unit."]


def test_retry_action_leaves_work_that_did_not_fail_alone(admin_client, project):
    wu = submit(project, 1).workunits.get()

    response = act(admin_client, WorkUnit, "retry", [wu])

    assert messages_of(response) == [
        "Retried 0 work units.",
        "1 work unit left alone: only failed work units and failed assimilations are retried "
        "(cancelled ones are not).",
    ]


def test_cancel_action_cancels_work_units_and_says_how_many(admin_client, project):
    batch = submit(project, 3)
    first, second, third = batch.workunits.order_by("id")

    response = act(admin_client, WorkUnit, "cancel", [first, second])
    again = act(admin_client, WorkUnit, "cancel", [second])

    masks = dict(batch.workunits.values_list("id", "error_mask"))
    assert masks == {first.id: ErrorMask.CANCELLED, second.id: ErrorMask.CANCELLED, third.id: 0}
    assert not Replica.objects.filter(workunit=first, server_state=ServerState.UNSENT).exists()
    assert messages_of(response) == ["Cancelled 2 work units."]
    assert messages_of(again) == [
        "Cancelled 0 work units.",
        "1 work unit left alone: already valid, failed or cancelled.",
    ]


def test_work_units_filter_by_result(admin_client, failed_workunit, project):
    pending = submit(project, 1).workunits.get()

    failed = admin_client.get(url(WorkUnit, "changelist"), {"result": "failed"})
    waiting = admin_client.get(url(WorkUnit, "changelist"), {"result": "pending"})

    assert list(failed.context["cl"].result_list) == [failed_workunit]
    assert list(waiting.context["cl"].result_list) == [pending]


# --- Hosts and volunteers -----------------------------------------------------------------------


def test_ban_and_unban_hosts(admin_client, host_factory):
    a, b = host_factory(), host_factory(banned=True)

    banned = act(admin_client, Host, "ban", [a, b])
    assert set(Host.objects.values_list("banned", flat=True)) == {True}
    unbanned = act(admin_client, Host, "unban", [a])

    a.refresh_from_db()
    assert not a.banned
    assert messages_of(banned) == ["Banned 1 host."]
    assert messages_of(unbanned) == ["Unbanned 1 host."]


def test_a_banned_host_gets_no_work(admin_client, project, host_factory):
    host = host_factory(project)
    submit(project, 1)

    act(admin_client, Host, "ban", [host])

    host.refresh_from_db()
    assert lease_replicas(host, 1) == []


def test_ban_and_unban_volunteers(admin_client, user_factory):
    a, b = (
        Volunteer.objects.create(user=user_factory()),
        Volunteer.objects.create(user=user_factory()),
    )

    banned = act(admin_client, Volunteer, "ban", [a, b])
    unbanned = act(admin_client, Volunteer, "unban", [b])

    assert dict(Volunteer.objects.values_list("pk", "banned")) == {a.pk: True, b.pk: False}
    assert messages_of(banned) == ["Banned 2 volunteers."]
    assert messages_of(unbanned) == ["Unbanned 1 volunteer."]


def test_a_user_without_a_volunteer_row_can_be_banned(admin_client, user_factory):
    user = user_factory("mallory")
    page = admin_client.get(url(Volunteer, "changelist"))
    assert url(Volunteer, "ban_user").encode() in page.content

    response = admin_client.post(
        url(Volunteer, "ban_user"), {"user": "MALLORY@example.org"}, follow=True
    )

    assert response.redirect_chain == [(url(Volunteer, "changelist"), 302)]
    assert Volunteer.objects.get(user=user).banned
    assert messages_of(response) == ["Banned mallory."]


def test_a_user_banned_by_name_gets_no_work_on_any_host(admin_client, project, host_factory):
    host = host_factory(project)
    submit(project, 1)

    admin_client.post(url(Volunteer, "ban_user"), {"user": host.user.username})

    assert lease_replicas(host, 1) == []


def test_banning_by_name_needs_the_change_permission(client, user_factory):
    staff = user_factory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_volunteer"))
    client.force_login(staff)

    assert client.post(url(Volunteer, "ban_user"), {"user": staff.username}).status_code == 403
    assert (
        url(Volunteer, "ban_user").encode() not in client.get(url(Volunteer, "changelist")).content
    )
    assert not Volunteer.objects.exists()


def test_banning_a_volunteer_by_name_keeps_their_credit(admin_client, user_factory):
    volunteer = Volunteer.objects.create(user=user_factory("eve"), total_credit=12.0)

    admin_client.post(url(Volunteer, "ban_user"), {"user": "eve"}, follow=True)
    again = admin_client.post(url(Volunteer, "ban_user"), {"user": "eve"}, follow=True)

    volunteer.refresh_from_db()
    assert (volunteer.banned, volunteer.total_credit) == (True, 12.0)
    assert messages_of(again) == ["eve was already banned."]


def test_banning_an_unknown_user_shows_an_error(admin_client):
    response = admin_client.post(url(Volunteer, "ban_user"), {"user": "nobody"})

    assert response.status_code == 200
    assert response.context["form"].errors["user"] == ["No user has that username or email."]
    assert not Volunteer.objects.exists()


# --- App versions -------------------------------------------------------------------------------


def test_deprecate_and_undeprecate_versions(admin_client, project):
    app = project.apps.get()
    old = AppVersion.objects.get()
    new = AppVersion.objects.create(app=app, version=2, kernel="export function run() {}")

    response = act(admin_client, AppVersion, "deprecate", [old])

    assert catalog.get(app.id).version_id == new.id
    assert messages_of(response) == ["Deprecated 1 version."]
    response = act(admin_client, AppVersion, "undeprecate", [old])
    assert not AppVersion.objects.filter(deprecated=True).exists()
    assert messages_of(response) == ["Undeprecated 1 version."]


def test_deprecating_the_last_version_warns_that_the_app_gets_no_work(admin_client, project):
    version = AppVersion.objects.get()
    assert catalog.get(version.app_id).version_id == version.id

    response = act(admin_client, AppVersion, "deprecate", [version])

    assert catalog.get(version.app_id).version_id is None
    assert messages_of(response) == [
        "Deprecated 1 version.",
        "squares/square has no current version left: it gets no new work until one is added.",
    ]


def test_adding_a_version_takes_kernel_text_and_a_wasm_file(admin_client, project):
    app = project.apps.get()
    wasm = b"\0asm\x01\0\0\0"
    data = {
        "app": app.pk,
        "version": 2,
        "kernel": "export function run(i) { return i; }",
        "wasm_file": SimpleUploadedFile("k.wasm", wasm, "application/wasm"),
    }

    response = admin_client.post(url(AppVersion, "add"), data)

    assert response.status_code == 302
    version = AppVersion.objects.get(version=2)
    assert bytes(version.wasm) == wasm
    assert version.wasm_sha256 == hashlib.sha256(wasm).hexdigest()
    assert version.kernel_sha256 == hashlib.sha256(data["kernel"].encode()).hexdigest()


def test_adding_a_version_without_wasm_leaves_it_empty(admin_client, project):
    data = {"app": project.apps.get().pk, "version": 2, "kernel": "export function run() {}"}

    assert admin_client.post(url(AppVersion, "add"), data).status_code == 302
    assert AppVersion.objects.get(version=2).wasm_sha256 == ""


def test_a_file_that_is_not_webassembly_is_refused(admin_client, project):
    data = {
        "app": project.apps.get().pk,
        "version": 2,
        "kernel": "export function run() {}",
        "wasm_file": SimpleUploadedFile("k.wasm", b"MZ not wasm"),
    }

    response = admin_client.post(url(AppVersion, "add"), data)

    assert response.status_code == 200
    assert "Not a WebAssembly binary" in response.context["adminform"].form.errors["wasm_file"][0]
    assert not AppVersion.objects.filter(version=2).exists()


# --- The queue dashboard ------------------------------------------------------------------------

DASHBOARD = "admin:compute_project_dashboard"


def test_the_dashboard_shows_queue_depths_per_project(admin_client, project, host_factory):
    submit(project, 3)
    lease_replicas(host_factory(project), 2)

    response = admin_client.get(reverse(DASHBOARD))

    assert response.status_code == 200
    (row,) = response.context["status"].projects
    assert (row.slug, row.unsent, row.in_progress) == ("squares", 4, 2)
    assert b'id="project-squares"' in response.content
    assert b'id="hosts-active">0<' in response.content


def test_every_link_on_the_dashboard_opens_a_filtered_list(admin_client, project):
    submit(project, 1)
    page = admin_client.get(reverse(DASHBOARD)).content.decode()

    links = re.findall(r'href="(/admin/compute/(?:replica|workunit)/\?[^"]+)"', page)

    assert len(links) == 5
    for link in links:
        response = admin_client.get(html.unescape(link))
        assert response.status_code == 200, link  # a bad lookup redirects with ?e=1


def test_a_batch_links_to_its_work_units(admin_client, project):
    batch, other = submit(project, 2), submit(project, 1)
    page = admin_client.get(url(Batch, "change", batch.pk)).content.decode()
    (link,) = re.findall(r'href="([^"]+)">2 work units<', page)

    response = admin_client.get(html.unescape(link))

    assert set(response.context["cl"].result_list) == set(batch.workunits.all())
    assert other.workunits.get() not in response.context["cl"].result_list


def test_the_dashboard_is_linked_from_the_project_list_and_the_app_index(admin_client, project):
    link = f'href="{reverse(DASHBOARD)}"'.encode()

    assert link in admin_client.get(url(Project, "changelist")).content
    assert link in admin_client.get(reverse("admin:app_list", args=["compute"])).content


def test_the_dashboard_sends_anonymous_visitors_to_the_login(client):
    response = client.get(reverse(DASHBOARD))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_dashboard_sends_non_staff_users_to_the_login(client, user_factory):
    client.force_login(user_factory())

    response = client.get(reverse(DASHBOARD))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_dashboard_forbids_staff_who_may_not_view_projects(client, user_factory):
    client.force_login(user_factory(is_staff=True))

    assert client.get(reverse(DASHBOARD)).status_code == 403


def test_the_dashboard_opens_for_staff_who_may_view_projects(client, user_factory):
    staff = user_factory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_project"))
    client.force_login(staff)

    assert client.get(reverse(DASHBOARD)).status_code == 200


def test_the_dashboard_counts_only_the_last_hour(admin_client, project, host_factory):
    host = host_factory(project, last_seen=timezone.now() - timedelta(hours=2))

    response = admin_client.get(reverse(DASHBOARD))

    assert response.context["status"].hosts_active == 0
    Host.objects.filter(pk=host.pk).update(last_seen=timezone.now())
    assert admin_client.get(reverse(DASHBOARD)).context["status"].hosts_active == 1
