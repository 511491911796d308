"""Team credit: recorded with each grant, folded into team totals periodically, decayed.

The receiver of ``compute.signals.credit_granted`` runs inside the granting transaction and
only appends :class:`TeamCredit` rows (one per replica, for members of a team at that
moment), so a grant never waits on a team's row. The fold adds those rows to the teams'
totals and RAC the way :func:`compute.credit.fold_project_credit` does for projects; the
decay mirrors :func:`compute.credit.decay_credit`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Sum
from django.db.models.functions import Exp

from compute.credit import HALF_LIFE, LN2, Grant, update_average
from socialgrid.teams.models import Team, TeamCredit, TeamMember


def record_team_credit(sender, grants: Sequence[Grant], now: datetime, **kwargs) -> int:
    """Append the team's share of ``grants``: credit counts for the team its earner is in now.

    The member rows are locked (FOR NO KEY UPDATE) so that a concurrent join, quit or removal
    either finishes before this reads them or waits for the grant to commit: a replica's
    credit goes to exactly the team the user was in when it was granted. Banned volunteers'
    credit counts for no team (they are left out of every ranking).
    """
    user_ids = {g.user_id for g in grants if g.user_id is not None}
    if not user_ids:
        return 0
    team_of = dict(
        TeamMember.objects.select_for_update(no_key=True, of=("self",))
        .filter(user_id__in=user_ids)
        .exclude(user__volunteer__banned=True)
        .order_by("user_id")
        .values_list("user_id", "team_id")
    )
    rows = [
        TeamCredit(
            replica_id=g.replica_id,
            team_id=team_of[g.user_id],
            user_id=g.user_id,
            amount=g.amount,
            granted_at=now,
        )
        for g in grants
        if g.user_id in team_of
    ]
    # The ledger already grants a replica once; ignoring conflicts keeps a replayed signal
    # from adding anything (or from rolling the grant back).
    TeamCredit.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def fold_team_credit(limit: int | None = None, now: float | None = None) -> int:
    """Add unfolded team credit to the teams' totals and RAC and to the members' credit.

    Rows are claimed with SKIP LOCKED so two folds never count one twice; teams are locked in
    id order, then members updated in (team, user) order, matching the membership flows.
    Credit of a user who has left since it was granted stays with the team only.
    """
    limit = limit or settings.COMPUTE["SWEEP_BATCH"] * 10
    now = now or time.time()
    with transaction.atomic():
        ids = list(
            TeamCredit.objects.filter(folded=False)
            .order_by("id")
            .select_for_update(skip_locked=True, no_key=True)
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return 0
        per_team = {
            row["team_id"]: (row["amount"], row["first"].timestamp())
            for row in TeamCredit.objects.filter(id__in=ids)
            .values("team_id")
            .annotate(amount=Sum("amount"), first=Min("granted_at"))
            .order_by("team_id")
        }
        for team in (
            Team.objects.select_for_update(no_key=True).filter(id__in=per_team).order_by("id")
        ):
            amount, first = per_team[team.id]
            # A team's first credit starts its average at the first grant.
            since = team.rac_time or min(first, now)
            team.rac, team.rac_time = update_average(team.rac, since, amount, now, now)
            team.total_credit += amount
            team.save(update_fields=["total_credit", "rac", "rac_time"])
        # A member is credited only with rows of their current stint in the team: one who
        # left and came back since does not get what they earned the first time.
        per_member = (
            TeamCredit.objects.filter(
                id__in=ids,
                user__team_membership__team_id=F("team_id"),
                granted_at__gte=F("user__team_membership__joined_at"),
            )
            .values("team_id", "user_id")
            .annotate(amount=Sum("amount"))
            .order_by("team_id", "user_id")
        )
        for row in per_member:
            TeamMember.objects.filter(team_id=row["team_id"], user_id=row["user_id"]).update(
                credit=F("credit") + row["amount"]
            )
        TeamCredit.objects.filter(id__in=ids).update(folded=True)
        return len(ids)


def decay_team_credit(now: float | None = None, min_age: float = 86400.0) -> int:
    """Decay the RAC of teams that earned nothing for ``min_age`` seconds, in one UPDATE."""
    now = now or time.time()
    return Team.objects.filter(rac__gt=0, rac_time__gt=0, rac_time__lt=now - min_age).update(
        rac=F("rac") * Exp((F("rac_time") - now) * (LN2 / HALF_LIFE)), rac_time=now
    )
