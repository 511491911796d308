from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "socialgrid.teams"
    label = "teams"
    verbose_name = "Teams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compute.signals import credit_granted
        from socialgrid.teams import tasks  # noqa: F401  (registered for the embedded beat)
        from socialgrid.teams.credit import record_team_credit

        # Team credit commits with the grant that earned it (see socialgrid.teams.credit).
        credit_granted.connect(record_team_credit, dispatch_uid="teams.record_team_credit")
