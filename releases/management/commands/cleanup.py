"""``cleanup``: delete session data older than the retention period (for cron)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from releases.health.retention import BATCH_SIZE, cleanup, retention_cutoff


class Command(BaseCommand):
    help = (
        "Delete session rollups, per-user rows, durations, errored-session and duplicate-"
        "delivery keys and ingest outcomes older than --days (default RETENTION_DAYS, 90), in "
        "batches. Releases, commits and deploys are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=settings.RETENTION_DAYS,
            help="keep this many days (default: RETENTION_DAYS, %(default)s)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be deleted, delete nothing"
        )
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help="rows per transaction"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days, dry_run, batch_size = options["days"], options["dry_run"], options["batch_size"]
        if days < 1:
            raise CommandError("--days must be at least 1.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        now = timezone.now()
        counts = cleanup(now=now, days=days, dry_run=dry_run, batch_size=batch_size)
        verb = "Would delete" if dry_run else "Deleted"
        cutoff = retention_cutoff(now=now, days=days)
        for name, count in counts.items():
            self.stdout.write(f"{verb} {count} {name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {sum(counts.values())} rows older than {cutoff.isoformat()} ({days} days)."
            )
        )
