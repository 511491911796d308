"""Badge rules.

Credit milestones (``CREDIT_LADDER``): powers of ten from 1 to 10 million credits. Browser
work earns little cobblestone credit (a 2 GFLOPS core earns about 17 credits an hour), so
the first rungs come within a volunteer's first session (1 credit in minutes, 10 within the
hour, 100 in an evening), and the top ones mark years of work on many cores. Checked on
every grant, against compute.Volunteer.total_credit.

Top volunteers (``RAC_PERCENTILES``): BOINC's rule, the top 1 %, 5 % and 25 % by recent
average credit among volunteers whose RAC is above zero, banned ones left out. The top p %
are the first floor(n·p/100) in RAC order plus anyone tied with the last of them; a rung
with no place in it (fewer than 100 volunteers for the top 1 %) gives no badge. Computed
periodically (socialgrid.feed.tasks.award_rac_badges); a badge once earned is kept.

Recruiters: awarded by socialgrid.invites (``award(inviter, "recruits", n)`` for each rung of
its RECRUIT_BADGE_LEVELS that the inviter's count of recruits reaches).

A volunteer reaching several rungs at once gets them all, and the feed announces the
highest only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.utils import timezone

from compute.models import Volunteer
from socialgrid.feed.models import Badge, BadgeKind, badge_description, badge_title
from socialgrid.feed.publishing import award

CREDIT_LADDER = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
RAC_PERCENTILES = (1, 5, 25)
RECRUIT_LADDER = (1, 5, 10, 25, 50)  # shown if socialgrid.invites does not say
THRESHOLDS_CACHE_KEY = "feed:rac-thresholds"


def rungs_reached(ladder: Iterable[int], value: float) -> list[int]:
    return [level for level in ladder if level <= value]


# --- Credit milestones --------------------------------------------------------------------


def award_credit_milestones(user_ids: Iterable[int]) -> int:
    """Award the volunteers ``user_ids`` every credit milestone their total has passed and
    they do not hold yet; returns how many badges were new.

    Runs inside the granting transaction, so it must be cheap: one query for the whole batch
    (each volunteer's total and how many of the rungs below it they hold), and another only
    for a volunteer who is missing one.
    """
    user_ids = set(user_ids)
    if not user_ids:
        return 0
    held = (
        Badge.objects.filter(
            user_id=OuterRef("user_id"), kind=BadgeKind.CREDIT, level__lte=OuterRef("total_credit")
        )
        .order_by()
        .values("user_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    rows = (
        Volunteer.objects.filter(
            user_id__in=user_ids, banned=False, total_credit__gte=CREDIT_LADDER[0]
        )
        .annotate(held=Subquery(held, output_field=IntegerField()))
        .select_related("user")
    )
    new = 0
    for volunteer in rows:
        due = rungs_reached(CREDIT_LADDER, volunteer.total_credit)
        if (volunteer.held or 0) >= len(due):
            continue
        have = set(
            Badge.objects.filter(user_id=volunteer.user_id, kind=BadgeKind.CREDIT).values_list(
                "level", flat=True
            )
        )
        new += _award_rungs(volunteer.user, BadgeKind.CREDIT, [m for m in due if m not in have])
    return new


def _award_rungs(user, kind: str, levels: list[int]) -> int:
    """Award ``levels`` (ascending), announcing only the highest."""
    new = 0
    for level in levels:
        new += award(user, kind, level, announce=level == levels[-1])
    return new


# --- Top volunteers by recent average credit ---------------------------------------------


def ranked_volunteers():
    return Volunteer.objects.filter(rac__gt=0, banned=False)


def rac_thresholds() -> tuple[int, dict[int, float]]:
    """The number of ranked volunteers and, per percentile, the lowest RAC inside it."""
    ranked = ranked_volunteers()
    n = ranked.count()
    thresholds: dict[int, float] = {}
    by_rac = ranked.order_by("-rac").values_list("rac", flat=True)
    for percentile in RAC_PERCENTILES:
        places = n * percentile // 100
        if places:
            # ORDER BY rac DESC OFFSET places-1 LIMIT 1, on the Volunteer(-rac) index.
            thresholds[percentile] = by_rac[places - 1 : places].get()
    return n, thresholds


def award_rac_badges() -> dict[int, int]:
    """Award the top-percentile badges; returns how many were new per percentile.

    Idempotent: it skips volunteers who hold the badge, and the unique constraint refuses
    a second one from an overlapping run.
    """
    n, thresholds = rac_thresholds()
    cache.set(
        THRESHOLDS_CACHE_KEY,
        {"ranked": n, "thresholds": thresholds, "at": timezone.now()},
        timeout=None,
    )
    users = get_user_model().objects
    announced: set[int] = set()
    new: dict[int, int] = {}
    for percentile in sorted(thresholds):  # the most exclusive first, so it is the one announced
        has_it = Badge.objects.filter(
            user_id=OuterRef("pk"), kind=BadgeKind.RAC_TOP, level=percentile
        )
        qualified = users.filter(
            volunteer__rac__gte=thresholds[percentile],
            volunteer__rac__gt=0,
            volunteer__banned=False,
        ).exclude(Exists(has_it))
        new[percentile] = 0
        for user in qualified.iterator(chunk_size=500):
            if award(user, BadgeKind.RAC_TOP, percentile, announce=user.pk not in announced):
                new[percentile] += 1
                announced.add(user.pk)
    return new


def cached_rac_thresholds() -> dict | None:
    """The last computed thresholds ({"ranked", "thresholds", "at"}), for display."""
    return cache.get(THRESHOLDS_CACHE_KEY)


# --- Recruiters ---------------------------------------------------------------------------


def recruit_ladder() -> tuple[int, ...]:
    """The recruiter rungs socialgrid.invites awards (its RECRUIT_BADGE_LEVELS), for display."""
    try:
        from socialgrid.invites.referrals import RECRUIT_BADGE_LEVELS
    except ImportError:
        return RECRUIT_LADDER
    return tuple(RECRUIT_BADGE_LEVELS)


# --- Showing badges -----------------------------------------------------------------------

KIND_ORDER = {BadgeKind.RAC_TOP: 0, BadgeKind.CREDIT: 1, BadgeKind.RECRUITS: 2}


def badges_for(user) -> list[Badge]:
    """``user``'s badges, best first: top percentiles (1 % before 5 %), then the highest
    credit milestone and recruiter rung."""

    def best_first(badge: Badge) -> tuple[int, int]:
        # A smaller percentile is better; a larger milestone or recruit count is.
        level = badge.level if badge.kind == BadgeKind.RAC_TOP else -badge.level
        return KIND_ORDER.get(badge.kind, len(KIND_ORDER)), level

    return sorted(Badge.objects.filter(user=user), key=best_first)


@dataclass(frozen=True)
class Rung:
    kind: str
    level: int
    earned_at: datetime | None

    @property
    def title(self) -> str:
        return badge_title(self.kind, self.level)

    @property
    def description(self) -> str:
        return badge_description(self.kind, self.level)


def ladders_for(user, held: Iterable[Badge] | None = None) -> dict[str, list[Rung]]:
    """Every rung of every ladder, with when ``user`` earned it (None: not yet); ``held``
    saves the query when the caller already has the user's badges."""
    held = Badge.objects.filter(user=user) if held is None else held
    earned = {(b.kind, b.level): b.awarded_at for b in held}
    ladders = {
        BadgeKind.CREDIT: CREDIT_LADDER,
        BadgeKind.RAC_TOP: RAC_PERCENTILES,
        BadgeKind.RECRUITS: recruit_ladder(),
    }
    return {
        kind: [Rung(kind, level, earned.get((kind, level))) for level in levels]
        for kind, levels in ladders.items()
    }
