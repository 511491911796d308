"""What the plugin page shows: the project, its live numbers and whom the work is credited to.

Credit always goes to whoever the browser's session is signed in as (the worker socket
carries the session cookie) or, with no session, to an anonymous host. Inside a frame on
another site the browser usually withholds our session cookie, so the page says plainly who
the work counts for instead of assuming.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from compute import stats
from compute.models import Project
from socialgrid.plugin import facebook


@dataclass(frozen=True)
class FacebookViewer:
    """The person Facebook says is looking at the canvas page."""

    authorised: bool  # Facebook told us who they are (they authorised the app)
    linked_name: str | None  # the public name of our account linked to them, if any
    linked_signed_in: bool  # that account is the one signed in here: it gets the credit


@dataclass(frozen=True)
class PluginPage:
    project: Project
    stats: stats.ProjectStats
    credited_name: str | None  # the signed-in account results go to; None: anonymous
    facebook: FacebookViewer | None = None


def plugin_page(
    project: Project,
    user,
    signed: facebook.SignedRequest | None = None,
    now: datetime | None = None,
) -> PluginPage:
    signed_in = user is not None and user.is_authenticated
    return PluginPage(
        project=project,
        stats=stats.project_stats(project, now),
        credited_name=user.get_username() if signed_in else None,
        facebook=facebook_viewer(signed, user if signed_in else None) if signed else None,
    )


def facebook_viewer(signed: facebook.SignedRequest, user) -> FacebookViewer:
    linked = facebook.linked_user(signed.user_id)
    return FacebookViewer(
        authorised=signed.user_id is not None,
        linked_name=linked.profile.public_name if linked is not None else None,
        linked_signed_in=linked is not None and user is not None and user.pk == linked.pk,
    )
