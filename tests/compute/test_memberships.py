from __future__ import annotations

from django.test import Client as HttpClient
from django.urls import reverse

import pytest
from asgiref.sync import sync_to_async

from compute import memberships, submission
from compute.models import Membership, Replica, WorkUnit
from compute.scheduler import lease_replicas
from compute.states import MembershipState, Outcome, ServerState
from tests.compute.protocol_client import Client


@pytest.fixture
def project(project_factory):
    project = project_factory(slug="squares", min_quorum=1, target_nresults=1)
    submission.create_batch(project, project.apps.get(), [{"x": i} for i in range(6)], name="b")
    return project


def test_pausing_stops_new_work_and_resuming_brings_it_back(project, host_factory):
    host = host_factory(project)
    memberships.pause(host.user, project)
    assert lease_replicas(host, 2) == []
    memberships.resume(host.user, project)
    assert len(lease_replicas(host, 2)) == 2


def test_finish_then_stop_keeps_the_leases_but_takes_nothing_more(project, host_factory):
    host = host_factory(project)
    held = lease_replicas(host, 2)
    memberships.finish_then_stop(host.user, project)
    assert lease_replicas(host, 2) == []
    assert (
        Replica.objects.filter(
            id__in=[a.replica_id for a in held], server_state=ServerState.IN_PROGRESS
        ).count()
        == 2
    )
    membership = Membership.objects.get(user=host.user, project=project)
    assert (membership.state, membership.no_more_work) == (MembershipState.ACTIVE, True)


def test_leaving_gives_back_the_held_replicas_for_reissue(project, host_factory):
    host = host_factory(project)
    held = lease_replicas(host, 2)
    memberships.leave(host.user, project)
    for a in held:
        replica = Replica.objects.get(id=a.replica_id)
        assert (replica.server_state, replica.outcome) == (ServerState.OVER, Outcome.DIDNT_NEED)
        assert WorkUnit.objects.get(id=a.workunit_id).transition_time is not None
    assert lease_replicas(host, 2) == []


def test_joining_again_after_leaving_reactivates(project, host_factory):
    host = host_factory(project)
    memberships.leave(host.user, project)
    memberships.join(host.user, project)
    assert Membership.objects.get(user=host.user, project=project).state == MembershipState.ACTIVE
    assert len(lease_replicas(host, 1)) == 1


@pytest.mark.parametrize("action", ["join", "pause", "resume", "finish", "leave"])
def test_membership_actions_need_a_signed_in_post(client, project, action):
    url = reverse("compute:membership", args=[project.slug, action])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_membership_actions_are_csrf_protected(project, user_factory):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(user_factory())
    assert http.post(reverse("compute:membership", args=[project.slug, "join"])).status_code == 403


def test_pausing_from_the_page_changes_only_your_membership(client, project, user_factory):
    me, other = user_factory(), user_factory()
    memberships.join(other, project)
    client.force_login(me)
    response = client.post(reverse("compute:membership", args=[project.slug, "pause"]), follow=True)
    assert "Paused" in response.content.decode()
    assert Membership.objects.get(user=me, project=project).state == MembershipState.PAUSED
    assert Membership.objects.get(user=other, project=project).state == MembershipState.ACTIVE


def test_private_projects_cannot_be_joined(client, project, user_factory):
    project.is_public = False
    project.save()
    client.force_login(user_factory())
    assert (
        client.post(reverse("compute:membership", args=[project.slug, "join"])).status_code == 404
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_connected_browsers_hear_a_pause_at_once(project, user_factory):
    def login():
        user = user_factory()
        http = HttpClient()
        http.force_login(user)
        return user, f"sessionid={http.cookies['sessionid'].value}"

    user, cookie = await sync_to_async(login)()
    ws = Client(cookie=cookie)
    await ws.hello(project=project.slug)
    await sync_to_async(memberships.pause)(user, project)
    message = await ws.receive()
    assert message == {
        "type": "membership",
        "project": "squares",
        "state": "paused",
        "no_more_work": False,
    }
    # Another volunteer's browser hears nothing about it.
    await ws.close()


def test_the_project_page_shows_your_membership_and_its_actions(client, project, user_factory):
    me = user_factory()
    client.force_login(me)
    page = client.get(project.get_absolute_url()).content.decode()
    assert reverse("compute:membership", args=[project.slug, "join"]) in page
    memberships.join(me, project)
    page = client.get(project.get_absolute_url()).content.decode()
    assert 'data-membership-state="active"' in page
    for action in ("pause", "finish", "leave"):
        assert reverse("compute:membership", args=[project.slug, action]) in page
    memberships.pause(me, project)
    page = client.get(project.get_absolute_url()).content.decode()
    assert reverse("compute:membership", args=[project.slug, "resume"]) in page


def test_top_contributors_respect_privacy_and_bans(client, project, user_factory):
    from compute.models import Volunteer
    from socialgrid.accounts.models import Privacy

    shy, banned, open_ = (
        user_factory(username="shy"),
        user_factory(username="cheat"),
        user_factory(username="ada"),
    )
    for user in (shy, banned, open_):
        Membership.objects.create(user=user, project=project, total_credit=5.0)
    shy.profile.privacy = Privacy.ANONYMOUS
    shy.profile.save()
    Volunteer.objects.create(user=banned, banned=True)
    page = client.get(project.get_absolute_url()).content.decode()
    assert "ada" in page
    assert f"Anonymous volunteer #{shy.id}" in page
    assert ">shy<" not in page
    assert "cheat" not in page
