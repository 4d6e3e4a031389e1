"""Retention: delete session data older than ``RETENTION_DAYS`` in short, bounded batches.

Releases, commits, deploys, issue groups and adoption stages are kept; only the session tables
that grow with traffic are trimmed (Sentry keeps 90 days). Each table is cut by its own time
column, to the hour (windows are hour-aligned, so a 90-day window still reads every hour it
starts in). Rows go by primary key, a few thousand per short transaction, so no table is
locked for long and ingestion goes on meanwhile. The users' counts by latest hour go last, after
the seen rows and their old crashed hours (docs/health.md §9.3). See docs/operations.md,
"Retention".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.db.models import Q

from .. import stamps
from ..models import (
    ErroredSession,
    IngestOutcome,
    ProjectUserSeen,
    ReleaseUserLast,
    ReleaseUserSeen,
    SessionDuration,
    SessionDurationDay,
    SessionRollup,
    SessionUpdateKey,
    SessionUser,
    SessionUserLast,
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
        # (its older last_crashed_hour is cleared first, see old_crashed_hours).
        "release users seen": SessionUserSeen.objects.filter(last_hour__lt=cutoff),
        "release users seen, all environments": ReleaseUserSeen.objects.filter(
            last_hour__lt=cutoff
        ),
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


def old_crashed_hours(*, now: datetime, days: int) -> dict[str, models.QuerySet[Any]]:
    """Per seen table, the rows whose latest crashed hour is before the cutoff: once
    :func:`old_rows` are gone, the users kept (seen since the cutoff) with an older crash.
    Retention clears that hour (NULL), then deletes the counts of old hours (:func:`old_counts`).

    The counts by latest hour (docs/health.md §9.3) stay exact for windows that start before
    the cutoff too (``RETENTION_DAYS`` below 90, and a 90-day window): a crashed hour whose
    count is deleted must not move that count later (the user's next crash would subtract one
    from a deleted, hence re-created, row). Cleared, it moves nothing, and the user counts as
    crashed in no window, as the rollups, which lost the crashed session, agree. Cleared after
    the seen rows' deletion, which re-checks each row's hour as it deletes: a row an envelope
    moved past the cutoff meanwhile is kept, and cleared here.
    """
    cutoff = retention_cutoff(now=now, days=days)
    return {
        "old crashed hours of release users seen": SessionUserSeen.objects.filter(
            last_crashed_hour__lt=cutoff
        ),
        "old crashed hours of release users seen, all environments": (
            ReleaseUserSeen.objects.filter(last_crashed_hour__lt=cutoff)
        ),
    }


def old_counts(*, now: datetime, days: int) -> dict[str, models.QuerySet[Any]]:
    """The counts by latest hour of the hours before the cutoff: deleted last, when no seen row
    is left to move them (:func:`old_crashed_hours`)."""
    cutoff = retention_cutoff(now=now, days=days)
    return {
        "users by latest hour": SessionUserLast.objects.filter(hour__lt=cutoff),
        "users by latest hour, all environments": ReleaseUserLast.objects.filter(hour__lt=cutoff),
    }


def _in_batches(
    queryset: models.QuerySet[Any],
    apply: Callable[[list[Any]], int],
    *,
    batch_size: int,
    should_stop: Callable[[], bool] | None,
) -> int:
    """``apply`` to the primary keys of ``queryset``'s rows, ``batch_size`` per transaction;
    the sum of what it returns (the rows it changed)."""
    done = 0
    while not (should_stop and should_stop()):
        with transaction.atomic():
            pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            done += apply(pks)
        if len(pks) < batch_size:
            break
    return done


def clear_crashed_in_batches(
    queryset: models.QuerySet[Any],
    *,
    batch_size: int = BATCH_SIZE,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Set ``last_crashed_hour`` of ``queryset``'s rows to NULL, ``batch_size`` per transaction.

    The update repeats the queryset's condition: a row that an envelope changed meanwhile (a
    newer crash) is left as it is."""
    return _in_batches(
        queryset,
        lambda pks: queryset.filter(pk__in=pks).update(last_crashed_hour=None),
        batch_size=batch_size,
        should_stop=should_stop,
    )


def delete_in_batches(
    queryset: models.QuerySet[Any],
    *,
    batch_size: int = BATCH_SIZE,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Delete ``queryset``'s rows by primary key, ``batch_size`` per transaction."""
    model = queryset.model
    return _in_batches(
        queryset,
        lambda pks: model.objects.filter(pk__in=pks).delete()[0],
        batch_size=batch_size,
        should_stop=should_stop,
    )


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
    # In this order: old rows, then the crashed hours of the users kept, then old counts.
    for name, queryset in old_rows(now=now, days=days).items():
        if dry_run:
            counts[name] = queryset.count()
        else:
            counts[name] = delete_in_batches(
                queryset, batch_size=batch_size, should_stop=should_stop
            )
    kept = Q(last_hour__gte=retention_cutoff(now=now, days=days))
    for name, queryset in old_crashed_hours(now=now, days=days).items():
        if dry_run:
            counts[name] = queryset.filter(kept).count()  # the others go with their rows
        else:
            counts[name] = clear_crashed_in_batches(
                queryset, batch_size=batch_size, should_stop=should_stop
            )
    for name, queryset in old_counts(now=now, days=days).items():
        if dry_run:
            counts[name] = queryset.count()
        else:
            counts[name] = delete_in_batches(
                queryset, batch_size=batch_size, should_stop=should_stop
            )
    if not dry_run and any(counts.values()):
        stamps.bump_all()  # old hours left the windows of any organization
    return counts
