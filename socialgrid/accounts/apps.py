from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "socialgrid.accounts"
    label = "accounts"
    verbose_name = "Accounts and profiles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from socialgrid.accounts import signals  # noqa: F401  (profiles for new users)
