"""``project_dsn``: print a project's DSN (the SDK's ``dsn`` option) on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from releases.models import Project, ProjectKey


class Command(BaseCommand):
    help = "Print the DSN of a project's first active client key (creating one if none)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--project", required=True, help="project slug")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(
            organization__slug=options["org"], slug=options["project"]
        ).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r} in {options['org']!r}.")
        key = ProjectKey.objects.active().filter(project=project).order_by("date_added", "pk")
        self.stdout.write((key.first() or ProjectKey.objects.create(project=project)).dsn)
