"""``monitor_adoption``: refresh adoption stages and prune ingest bookkeeping (for cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from releases.health.adoption import refresh_adoption
from releases.health.store import prune_update_keys


class Command(BaseCommand):
    help = (
        "Apply the 10 %-of-sessions-over-6-hours adoption rule to every organization now, and "
        "forget duplicate-delivery keys older than any accepted session update."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        adopted = refresh_adoption(now=now)
        pruned = prune_update_keys(now)
        self.stdout.write(
            self.style.SUCCESS(f"Adoption refreshed: {adopted} adopted rows; {pruned} keys pruned.")
        )
