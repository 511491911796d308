from django.apps import AppConfig


class InvitesConfig(AppConfig):
    name = "socialgrid.invites"
    label = "invites"
    verbose_name = "Invites and referrals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from socialgrid.invites import receivers  # noqa: F401  (sign-ups, recruit counting)
