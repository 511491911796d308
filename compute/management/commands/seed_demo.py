"""Seed the demo: an admin account (credentials printed) and the example projects with work."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from compute.demo import install_demo


def _site() -> str:
    """Where ``make demo`` serves, as runplatform reads it: HOST and PORT (127.0.0.1:8000)."""
    return f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"


class Command(BaseCommand):
    help = "Create the demo admin account and the example projects with batches of work."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--password", help="Admin password (default: a new random one, printed)."
        )

    def handle(self, *args, username: str, password: str | None, **options) -> None:
        User = get_user_model()
        password = password or secrets.token_urlsafe(12)
        admin, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@localhost"}
        )
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        for installed in install_demo(admin):
            batch = installed.batch
            progress = (
                f"{batch.n_done}/{batch.n_workunits} work units done" if batch else "no batch"
            )
            self.stdout.write(
                f"project {installed.project.slug}: app {installed.app.name} "
                f"v{installed.version.version}, {progress}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"admin account {'created' if created else 'reset'}: "
                f"username {username!r} password {password!r} ({_site()}/admin/)"
            )
        )
