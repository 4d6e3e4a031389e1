"""``create_admin``: the local superuser who signs in to the admin (``make run``). Idempotent."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import credentials
from accounts.models import User


class Command(BaseCommand):
    help = (
        "Create (or repair) a superuser whose password is generated once and kept in the "
        "credentials file; print the password alone on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--credentials",
            type=Path,
            default=None,
            help="where the password is kept (default: .demo-credentials in the project)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["credentials"] or credentials.default_path()
        username = options["username"]
        try:
            stored = credentials.load(path)["passwords"].get(username)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        password = stored or secrets.token_urlsafe(12)
        user, created = User.objects.get_or_create(
            username=username, defaults={"name": "Administrator"}
        )
        changed = created or not (user.is_active and user.is_staff and user.is_superuser)
        user.is_active = user.is_staff = user.is_superuser = True
        if created or not user.check_password(password):
            user.set_password(password)
            changed = True
        if changed:
            user.save()
        if stored is None:
            credentials.remember(path, "passwords", username, password)
        self.stdout.write(password)
