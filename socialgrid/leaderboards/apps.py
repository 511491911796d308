from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_save


class LeaderboardsConfig(AppConfig):
    name = "socialgrid.leaderboards"
    label = "leaderboards"
    verbose_name = "Leaderboards"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compute.models import Host, Volunteer
        from compute.signals import credit_granted
        from socialgrid.leaderboards import tasks  # noqa: F401  (the embedded beat runs it by name)
        from socialgrid.leaderboards.rollups import record_period_credit
        from socialgrid.leaderboards.sorted_sets import forget_banned_host, forget_banned_volunteer

        # Today's and this week's credit commit with the grant (socialgrid.leaderboards.rollups).
        credit_granted.connect(record_period_credit, dispatch_uid="leaderboards.period_credit")
        # A ban takes effect on the cached boards at once, not at the next rebuild.
        post_save.connect(
            forget_banned_volunteer, sender=Volunteer, dispatch_uid="leaderboards.ban_volunteer"
        )
        post_save.connect(forget_banned_host, sender=Host, dispatch_uid="leaderboards.ban_host")
