"""The project's own app: creates the database cache tables after ``migrate``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.core.management import call_command
from django.db.models.signals import post_migrate


def create_cache_tables(using: str, **kwargs: Any) -> None:
    """``createcachetable`` as part of ``migrate``: the rate-limit counters live in a
    ``DatabaseCache`` by default. Idempotent: existing tables are left alone."""
    call_command("createcachetable", database=using, verbosity=0)


class ConfigConfig(AppConfig):
    name = "config"
    label = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        # post_migrate goes out once per app with models (this one has none): once is enough.
        post_migrate.connect(
            create_cache_tables,
            sender=apps.get_app_config("auth"),
            dispatch_uid="create_cache_tables",
        )
