"""``monitor_adoption``: refresh adoption stages of every organization (for cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from releases.adoption import refresh_adoption


class Command(BaseCommand):
    help = "Apply the 10 %-of-sessions-over-6-hours adoption rule to every organization now."

    def handle(self, *args: Any, **options: Any) -> None:
        adopted = refresh_adoption(now=timezone.now())
        self.stdout.write(self.style.SUCCESS(f"Adoption refreshed: {adopted} adopted rows."))
