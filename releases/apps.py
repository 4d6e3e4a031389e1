"""App configuration."""

from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "releases"

    def ready(self) -> None:
        from . import (
            scheduler,  # noqa: F401 - registers the JobRun model
            signals,  # noqa: F401 - connects the receivers
        )
