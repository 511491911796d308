from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "compute"
    verbose_name = "Compute engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the catalog's cache invalidation, and register the Celery tasks so that the
        # embedded beat (which has no worker to autodiscover them) can find them by name.
        from django.db.backends.signals import connection_created

        from compute import catalog, tasks  # noqa: F401
        from compute.dispatch.dialect import plan_generically

        connection_created.connect(plan_generically, dispatch_uid="compute.plan_generically")
