"""Sentry's stats periods and the hour-aligned windows that health numbers are counted in.

Rollups are hourly, so a window starting at ``now - period`` includes the whole hour that
contains its start (docs/health.md §1.1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Sentry's STATS_PERIODS: key -> (rollup seconds, bucket count). Order matters: it is the order
# of the error message.
STATS_PERIODS: dict[str, tuple[int, int]] = {
    "1h": (3600, 1),
    "24h": (3600, 24),
    "1d": (3600, 24),
    "48h": (3600, 48),
    "2d": (3600, 48),
    "7d": (86400, 7),
    "14d": (86400, 14),
    "30d": (86400, 30),
    "90d": (259200, 30),
}
DAY = timedelta(hours=24)
HAS_DATA_FALLBACK = timedelta(days=90)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def period_start(period: str, now: datetime) -> datetime:
    """Start of the hour-aligned window ``[now - period, now]``."""
    rollup, count = STATS_PERIODS[period]
    return hour_of(now - timedelta(seconds=rollup * count))


def stats_buckets(period: str, now: datetime) -> list[int]:
    """Bucket start timestamps for ``period``, oldest first (docs/api.md §2.9)."""
    rollup, count = STATS_PERIODS[period]
    start = int(now.timestamp()) - rollup * count
    first = (start // rollup + 1) * rollup
    return [first + i * rollup for i in range(count)]
