"""Release health reads: ``healthData``, session bounds, health sorts and adoption filters.

Every number comes from the rollups and sets that ``ingestion.py`` maintains, never from raw
session updates. :func:`health_data` takes a whole page of ``(project_id, version)`` pairs and
costs a fixed number of queries (six) whatever the page size. Windows are hour-aligned: a
window starting at ``now - period`` includes the hour that contains its start, as the
rollups are hourly (release-health.md §1.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)

from ..models import (
    ProjectUserSeen,
    Release,
    SessionDuration,
    SessionRollup,
    SessionUser,
    SessionUserSeen,
)
from .periods import DAY, HAS_DATA_FALLBACK, STATS_PERIODS, hour_of, period_start, stats_buckets


@dataclass(frozen=True)
class HealthOptions:
    """What the caller asked for: the summary window and the stats series' period.

    ``stat`` picks what ``stats`` counts (``sessions`` or ``users``, list endpoint's
    ``healthStat``); ``environment_ids`` restricts every number (None: all environments).
    """

    summary_period: str = "14d"
    stats_period: str | None = "24h"
    stat: str = "sessions"
    environment_ids: tuple[int, ...] | None = None


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


# The order statistics that p50 and p90 interpolate between, for ``total`` values: index
# k = floor((total - 1) * q) and k + 1 (release-health.md §1.3). Integer arithmetic only, so
# the same SQL runs on PostgreSQL and SQLite.
_PERCENTILE_SQL = """
SELECT project_id, release_id, MAX(total),
       MIN(CASE WHEN cum > (total - 1) / 2 THEN duration_ms END),
       MIN(CASE WHEN cum > (total - 1) / 2 + 1 THEN duration_ms END),
       MIN(CASE WHEN cum > (total - 1) * 9 / 10 THEN duration_ms END),
       MIN(CASE WHEN cum > (total - 1) * 9 / 10 + 1 THEN duration_ms END)
FROM (
    SELECT project_id, release_id, duration_ms,
           CAST(SUM(n) OVER (PARTITION BY project_id, release_id ORDER BY duration_ms)
                AS BIGINT) AS cum,
           CAST(SUM(n) OVER (PARTITION BY project_id, release_id) AS BIGINT) AS total
    FROM ({rows}) AS counted
) AS cumulative
GROUP BY project_id, release_id
"""


def duration_percentiles(
    rows: QuerySet[SessionDuration],
) -> dict[tuple[int, int], tuple[float, float]]:
    """``(p50, p90)`` in seconds per (project id, release id) of the duration rows given.

    Linear interpolation at ``(n - 1)·q`` over every exited session, as if each duration
    were listed ``count`` times; one query, one row per pair.
    """
    counted = (
        rows.values("project_id", "release_id", "duration_ms")
        .annotate(n=Sum("count"))
        .values_list("project_id", "release_id", "duration_ms", "n")
        .order_by()
    )
    sql, params = counted.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_PERCENTILE_SQL.format(rows=sql), params)
        found = cursor.fetchall()

    def interpolate(total: int, q: Fraction, low: int, high: int | None) -> float:
        fraction = (total - 1) * q % 1  # exact, like the integer division in the SQL
        value = low if not fraction or high is None else low + (high - low) * fraction
        return float(value / 1000)

    return {
        (project_id, release_id): (
            interpolate(total, Fraction(1, 2), p50_low, p50_high),
            interpolate(total, Fraction(9, 10), p90_low, p90_high),
        )
        for project_id, release_id, total, p50_low, p50_high, p90_low, p90_high in found
    }


def _ratio_percent(part: int | None, whole: int | None) -> float | None:
    if not part or not whole:
        return None
    return part / whole * 100


def _env_q(options: HealthOptions) -> Q:
    if options.environment_ids is None:
        return Q()
    return Q(environment_id__in=options.environment_ids)


def health_data(
    pairs: list[tuple[int, str]],
    options: HealthOptions,
    now: datetime,
    *,
    release_ids: Mapping[str, int] | None = None,
) -> dict[tuple[int, str], dict[str, Any]]:
    """``healthData`` for every ``(project_id, version)`` pair of a page, in six queries.

    ``release_ids`` maps the versions to release ids when the caller has the releases (one
    organization's); without it, one more query looks them up. Fields, formulas and null
    rules: release-health.md §1 and DECISIONS.md.
    """
    if not pairs:
        return {}
    projects = {p for p, _ in pairs}
    versions = {v for _, v in pairs}
    if release_ids is None:
        release_ids = dict(
            Release.objects.filter(projects__in=projects, version__in=versions)
            .values_list("version", "pk")
            .distinct()
        )
    # Filtering on ids rather than joining Release lets the planner use the covering indexes.
    version_of = {pk: version for version, pk in release_ids.items() if version in versions}
    ids = set(version_of)
    env = _env_q(options)
    summary_start = period_start(options.summary_period, now)
    day_start = hour_of(now - DAY)
    fallback_start = hour_of(now - HAS_DATA_FALLBACK)
    in_summary = Q(hour__gte=summary_start)
    in_day = Q(hour__gte=day_start)
    pair_key = ("project_id", "release_id")

    # 1. Counters per pair: summary window, last 24 h, and when data was last seen.
    counters = {
        (row["project_id"], version_of[row["release_id"]]): row
        for row in SessionRollup.objects.filter(env, project_id__in=projects, release_id__in=ids)
        .values(*pair_key)
        .annotate(
            n_sessions=Sum("sessions", filter=in_summary),
            n_crashed=Sum("crashed", filter=in_summary),
            n_abnormal=Sum("abnormal", filter=in_summary),
            n_unhandled=Sum("unhandled", filter=in_summary),
            n_errored=Sum("errored", filter=in_summary),
            n_updates=Sum("updates", filter=in_summary),
            n_sessions_24h=Sum("sessions", filter=in_day),
            last_hour=Max("hour"),
        )
        .order_by()
    }
    # 2. Sessions per project (all releases), last 24 h.
    project_sessions = dict(
        SessionRollup.objects.filter(env, in_day, project_id__in=projects)
        .values("project_id")
        .annotate(total=Sum("sessions"))
        .values_list("project_id", "total")
        .order_by()
    )
    # 3. Distinct users per pair: each did counts when its last (crashed) hour is in the window.
    users = {
        (row["project_id"], version_of[row["release_id"]]): row
        for row in SessionUserSeen.objects.filter(
            env,
            project_id__in=projects,
            release_id__in=ids,
            last_hour__gte=min(summary_start, day_start),
        )
        .values(*pair_key)
        .annotate(
            n_users=Count("did", distinct=True, filter=Q(last_hour__gte=summary_start)),
            n_crashed_users=Count(
                "did", distinct=True, filter=Q(last_crashed_hour__gte=summary_start)
            ),
            n_users_24h=Count("did", distinct=True, filter=Q(last_hour__gte=day_start)),
        )
        .order_by()
    }
    # 4. Distinct users per project (across releases), last 24 h.
    project_users = dict(
        ProjectUserSeen.objects.filter(env, project_id__in=projects, last_hour__gte=day_start)
        .values("project_id")
        .annotate(total=Count("did", distinct=True))
        .values_list("project_id", "total")
        .order_by()
    )
    # 5. Duration percentiles of exited sessions per pair, computed in the database.
    durations = {
        (project_id, version_of[release_id]): quantiles
        for (project_id, release_id), quantiles in duration_percentiles(
            SessionDuration.objects.filter(
                env, in_summary, project_id__in=projects, release_id__in=ids
            )
        ).items()
    }
    # 6. The stats series.
    series = _stats(pairs, options, now, projects, version_of, env)

    result: dict[tuple[int, str], dict[str, Any]] = {}
    for pair in pairs:
        data = no_data(options, now)
        row = counters.get(pair)
        user_row = users.get(pair) or {}
        if row is not None:
            sessions = row["n_sessions"] or 0
            crashed = row["n_crashed"] or 0
            total_users = user_row.get("n_users") or 0
            fatal = crashed + (row["n_abnormal"] or 0) + (row["n_unhandled"] or 0)
            data.update(
                {
                    "totalSessions": sessions or None,
                    "totalUsers": total_users or None,
                    "sessionsCrashed": crashed,
                    "sessionsErrored": max(0, (row["n_errored"] or 0) - fatal),
                    "crashFreeSessions": 100 - crashed / sessions * 100 if sessions else None,
                    "crashFreeUsers": (
                        100 - (user_row.get("n_crashed_users") or 0) / total_users * 100
                        if total_users
                        else None
                    ),
                }
            )
            data["durationP50"], data["durationP90"] = durations.get(pair, (None, None))
            # Any stored data: the 24 h group is made of ints (DECISIONS.md).
            sessions_24h = row["n_sessions_24h"] or 0
            users_24h = user_row.get("n_users_24h") or 0
            project_sessions_24h = project_sessions.get(pair[0]) or 0
            project_users_24h = project_users.get(pair[0]) or 0
            data.update(
                {
                    "totalSessions24h": sessions_24h,
                    "totalUsers24h": users_24h,
                    "totalProjectSessions24h": project_sessions_24h,
                    "totalProjectUsers24h": project_users_24h,
                    "adoption": _ratio_percent(users_24h, project_users_24h),
                    "sessionsAdoption": _ratio_percent(sessions_24h, project_sessions_24h),
                }
            )
            data["hasHealthData"] = bool(row["n_updates"]) or (
                options.summary_period != "90d" and row["last_hour"] >= fallback_start
            )
        if options.stats_period and pair in series:
            data["stats"] = {options.stats_period: series[pair]}
        result[pair] = data
    return result


def _stats(
    pairs: list[tuple[int, str]],
    options: HealthOptions,
    now: datetime,
    projects: set[int],
    version_of: dict[int, str],
    env: Q,
) -> dict[tuple[int, str], list[list[int]]]:
    """``[[ts, value], …]`` per pair with data; sessions per bucket, or distinct users."""
    if not options.stats_period:
        return {}
    rollup, _ = STATS_PERIODS[options.stats_period]
    buckets = stats_buckets(options.stats_period, now)
    first = datetime.fromtimestamp(buckets[0], tz=UTC)
    end = buckets[-1] + rollup
    index = {ts: i for i, ts in enumerate(buckets)}
    wanted = set(pairs)
    values: dict[tuple[int, str], list[int]] = {}

    def slot(hour: datetime) -> int | None:
        ts = int(hour.timestamp())
        if ts >= end:
            return None
        return index.get(ts - ts % rollup)

    if options.stat == "users":
        seen: dict[tuple[int, str], list[set[Any]]] = {}
        for project_id, release_id, hour, did in (
            SessionUser.objects.filter(
                env, project_id__in=projects, release_id__in=list(version_of), hour__gte=first
            )
            .values_list("project_id", "release_id", "hour", "did")
            .order_by()
        ):
            version = version_of[release_id]
            i = slot(hour)
            if i is not None and (project_id, version) in wanted:
                sets = seen.setdefault((project_id, version), [set() for _ in buckets])
                sets[i].add(did)
        values = {pair: [len(s) for s in sets] for pair, sets in seen.items()}
    else:
        for project_id, release_id, hour, sessions in (
            SessionRollup.objects.filter(
                env, project_id__in=projects, release_id__in=list(version_of), hour__gte=first
            )
            .values("project_id", "release_id", "hour")
            .annotate(total=Sum("sessions"))
            .values_list("project_id", "release_id", "hour", "total")
            .order_by()
        ):
            version = version_of[release_id]
            i = slot(hour)
            if i is not None and (project_id, version) in wanted:
                counts = values.setdefault((project_id, version), [0] * len(buckets))
                counts[i] += sessions or 0
    return {
        pair: [[ts, count] for ts, count in zip(buckets, counts, strict=True)]
        for pair, counts in values.items()
    }


def session_bounds(
    project_id: int, release_id: int, environment_ids: list[int] | None = None
) -> tuple[datetime | None, datetime | None]:
    """Earliest and latest session start (hour-truncated) of a project and release."""
    rollups = SessionRollup.objects.filter(project_id=project_id, release_id=release_id)
    if environment_ids is not None:
        rollups = rollups.filter(environment_id__in=environment_ids)
    bounds = rollups.aggregate(lower=Min("hour"), upper=Max("hour"))
    return bounds["lower"], bounds["upper"]
