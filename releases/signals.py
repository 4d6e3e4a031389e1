"""Signal receivers: every new project gets a client key."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Project, ProjectKey


@receiver(post_save, sender=Project, dispatch_uid="releases.project_default_key")
def create_default_key(
    sender: type[Project], instance: Project, created: bool, **kwargs: Any
) -> None:
    """Give a new project its default DSN, as Sentry does when a project is created."""
    if created and not kwargs.get("raw"):
        ProjectKey.objects.create(project=instance)
