"""Release health: ``healthData`` per (project, release), session bounds and stats periods.

Until sessions are ingested every project reports Sentry's documented "no data" shape. The
functions take whole pages so that a page of releases costs a fixed number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


@dataclass(frozen=True)
class HealthOptions:
    """What the caller asked for: the summary window and the stats series' period."""

    summary_period: str = "14d"
    stats_period: str | None = "24h"
    now: datetime | None = None


def stats_buckets(period: str, now: datetime) -> list[int]:
    """Bucket start timestamps for ``period``, oldest first (release-api.md §2.9)."""
    rollup, count = STATS_PERIODS[period]
    start = int(now.timestamp()) - rollup * count
    first = (start // rollup + 1) * rollup
    return [first + i * rollup for i in range(count)]


def no_data(options: HealthOptions, now: datetime) -> dict[str, Any]:
    """The ``healthData`` of a project and release without any session data."""
    data: dict[str, Any] = {
        "durationP50": None,
        "durationP90": None,
        "crashFreeUsers": None,
        "crashFreeSessions": None,
        "sessionsCrashed": 0,
        "sessionsErrored": 0,
        "totalUsers": None,
        "totalUsers24h": None,
        "totalProjectUsers24h": None,
        "totalSessions": None,
        "totalSessions24h": None,
        "totalProjectSessions24h": None,
        "adoption": None,
        "sessionsAdoption": None,
        "stats": {},
        "hasHealthData": False,
    }
    if options.stats_period:
        data["stats"] = {
            options.stats_period: [[ts, 0] for ts in stats_buckets(options.stats_period, now)]
        }
    return data


def health_data(
    pairs: list[tuple[int, str]], options: HealthOptions, now: datetime
) -> dict[tuple[int, str], dict[str, Any]]:
    """``healthData`` for every ``(project_id, version)`` pair of a page."""
    return {pair: no_data(options, now) for pair in pairs}


def session_bounds(
    project_id: int, version: str, environments: list[str] | None = None
) -> tuple[datetime | None, datetime | None]:
    """Earliest and latest session start of a project and release (optionally per env)."""
    return None, None


def has_recent_health_data(project_ids: list[int], version: str) -> bool:
    """Whether any of the projects has session data for the release in the last 90 days."""
    return False
