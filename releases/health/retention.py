"""Retention: delete session data older than ``RETENTION_DAYS`` in short, bounded batches.

Releases, commits, deploys, issue groups and adoption stages are kept; only the session tables
that grow with traffic are trimmed (Sentry keeps 90 days). Each table is cut by its own time
column, to the hour (windows are hour-aligned, so a 90-day window still reads every hour it
starts in). Rows go by primary key, a few thousand per short transaction, so no table is
locked for long and ingestion goes on meanwhile. See docs/operations.md, "Retention".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import models, transaction

from .. import stamps
from ..models import (
    ErroredSession,
    IngestOutcome,
    ProjectUserSeen,
    SessionDuration,
    SessionDurationDay,
    SessionRollup,
    SessionUpdateKey,
    SessionUser,
    SessionUserSeen,
)

BATCH_SIZE = 5000
# Duplicate-delivery keys: updates older than five days are refused at ingest, so a key is
# never needed after six days (a day of margin for clock drift), whatever the retention.
UPDATE_KEY_HORIZON = timedelta(days=6)


def retention_cutoff(*, now: datetime, days: int) -> datetime:
    """The start of the hour that holds ``now - days``: older hours are deleted."""
    return (now - timedelta(days=days)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def old_rows(*, now: datetime, days: int) -> dict[str, models.QuerySet[Any]]:
    """Per table, the rows that retention deletes (in deletion order)."""
    cutoff = retention_cutoff(now=now, days=days)
    day: date = cutoff.date()
    keys_cutoff = max(cutoff, now - UPDATE_KEY_HORIZON)
    return {
        "session rollups": SessionRollup.objects.filter(hour__lt=cutoff),
        "session users": SessionUser.objects.filter(hour__lt=cutoff),
        # Seen rows hold the latest hour of a user: a user seen since the cutoff keeps its row
        # (and its older last_crashed_hour, which no window after the cutoff reads).
        "release users seen": SessionUserSeen.objects.filter(last_hour__lt=cutoff),
        "project users seen": ProjectUserSeen.objects.filter(last_hour__lt=cutoff),
        "session durations": SessionDuration.objects.filter(hour__lt=cutoff),
        # Day rows go once their whole day is before the cutoff's day. The cutoff's own row
        # stays, with its hours before the cutoff: a window up to the retention starts at or
        # after the cutoff, and reads its first day from hourly rows (docs/health.md §9.3).
        "session durations per day": SessionDurationDay.objects.filter(day__lt=day),
        "errored sessions": ErroredSession.objects.filter(hour__lt=cutoff),
        "update keys": SessionUpdateKey.objects.filter(received__lt=keys_cutoff),
        # Outcomes are per day: a day goes once it ends before the cutoff's day.
        "ingest outcomes": IngestOutcome.objects.filter(day__lt=day),
    }


def delete_in_batches(
    queryset: models.QuerySet[Any],
    *,
    batch_size: int = BATCH_SIZE,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Delete ``queryset``'s rows by primary key, ``batch_size`` per transaction."""
    model = queryset.model
    deleted = 0
    while not (should_stop and should_stop()):
        with transaction.atomic():
            pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            count, _ = model.objects.filter(pk__in=pks).delete()
        deleted += count
        if len(pks) < batch_size:
            break
    return deleted


def cleanup(
    *,
    now: datetime,
    days: int,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Delete (or, with ``dry_run``, count) old session data; returns the counts per table."""
    if days < 1:
        raise ValueError("Retention must be at least one day.")
    counts: dict[str, int] = {}
    for name, queryset in old_rows(now=now, days=days).items():
        if dry_run:
            counts[name] = queryset.count()
        else:
            counts[name] = delete_in_batches(
                queryset, batch_size=batch_size, should_stop=should_stop
            )
    if not dry_run and any(counts.values()):
        stamps.bump_all()  # old hours left the windows of any organization
    return counts
