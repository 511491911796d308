"""A volunteer's membership of a project: join, pause, resume, finish then stop, leave.

Each change is pushed at once to the volunteer's connected hosts (the ``membership``
protocol message), and the scheduler already stops leasing work for memberships that are
not active or asked for no more work. Leaving also gives back the replicas the volunteer's
hosts hold for the project, so they are reissued at once rather than after their deadlines.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compute import lifecycle, notify
from compute.models import Membership, Project, Replica
from compute.states import MembershipState, ServerState


def _changed(membership: Membership) -> None:
    transaction.on_commit(
        lambda: notify.membership_changed(
            membership.user_id,
            membership.project.slug,
            membership.state,
            membership.no_more_work,
        )
    )


def _set(user, project: Project, **fields: object) -> Membership:
    with transaction.atomic():
        membership, _ = Membership.objects.select_for_update().get_or_create(
            user=user, project=project
        )
        for name, value in fields.items():
            setattr(membership, name, value)
        membership.save(update_fields=list(fields))
        _changed(membership)
    return membership


def join(user, project: Project) -> Membership:
    """Join, or come back after leaving or pausing; work flows again."""
    return _set(user, project, state=MembershipState.ACTIVE, no_more_work=False)


def pause(user, project: Project) -> Membership:
    """Stop computing for the project; the leases are kept and finish after resuming."""
    return _set(user, project, state=MembershipState.PAUSED)


def resume(user, project: Project) -> Membership:
    return _set(user, project, state=MembershipState.ACTIVE, no_more_work=False)


def finish_then_stop(user, project: Project) -> Membership:
    """BOINC's "no new tasks": compute what is held, then take nothing more."""
    return _set(user, project, no_more_work=True)


def leave(user, project: Project) -> Membership:
    """Stop computing for the project and give back what the volunteer's hosts hold."""
    now = timezone.now()
    with transaction.atomic():
        membership = _set(user, project, state=MembershipState.LEFT, no_more_work=False)
        held = Replica.objects.filter(
            user=user, project=project, server_state=ServerState.IN_PROGRESS
        )
        workunit_ids = list(held.values_list("workunit_id", flat=True))
        aborted = lifecycle.abort_in_progress_for(held)
        lifecycle.flag_transition(workunit_ids, now)
        if aborted:
            transaction.on_commit(lambda: notify.replicas_cancelled(aborted))
    return membership
