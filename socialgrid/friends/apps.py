from django.apps import AppConfig


class FriendsConfig(AppConfig):
    name = "socialgrid.friends"
    label = "friends"
    verbose_name = "Friends"
    default_auto_field = "django.db.models.BigAutoField"
