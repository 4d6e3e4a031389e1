"""Release health reads: the numbers behind ``healthData`` and the session bounds.

Every number comes from the rollups and sets that ``store.py`` maintains, never from raw
session updates. :func:`health_data` takes a whole page of ``(project_id, release_id)`` pairs
and costs a fixed number of queries (two) whatever the page size. It returns plain data
(:class:`ReleaseHealth`); the API's serializers give it Sentry's wire format. Windows are
hour-aligned (``periods.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    BigIntegerField,
    Count,
    DateTimeField,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Cast

from ..models import (
    ProjectUserSeen,
    ReleaseUserLast,
    SessionDuration,
    SessionDurationDay,
    SessionRollup,
    SessionUser,
    SessionUserLast,
    SessionUserSeen,
)
from .periods import DAY, HAS_DATA_FALLBACK, STATS_PERIODS, hour_of, period_start, stats_buckets


@dataclass(frozen=True)
class HealthQuery:
    """What to read: the summary window and the stats series' period (None: no series).

    ``stat`` picks what the series counts (``sessions`` or ``users``, the list's
    ``healthStat``); ``environment_ids`` restricts every number (None: all environments).
    """

    summary_period: str = "14d"
    stats_period: str | None = "24h"
    stat: str = "sessions"
    environment_ids: tuple[int, ...] | None = None


@dataclass
class ReleaseHealth:
    """The health numbers of one project and release (docs/health.md §1).

    Counts over the summary window, the last 24 hours, and ``series``: ``(bucket start,
    value)`` pairs of the query's stats period, oldest first. A pair without any stored data
    keeps the defaults (``has_data`` False, null totals).
    """

    series: list[tuple[int, int]]
    has_data: bool = False
    crash_free_sessions: float | None = None
    crash_free_users: float | None = None
    sessions_crashed: int = 0
    sessions_errored: int = 0
    total_sessions: int | None = None
    total_users: int | None = None
    total_sessions_24h: int | None = None
    total_users_24h: int | None = None
    total_project_sessions_24h: int | None = None
    total_project_users_24h: int | None = None
    adoption: float | None = None
    sessions_adoption: float | None = None
    duration_p50: float | None = None
    duration_p90: float | None = None


def empty_series(query: HealthQuery, now: datetime) -> list[tuple[int, int]]:
    if not query.stats_period:
        return []
    return [(ts, 0) for ts in stats_buckets(query.stats_period, now)]


# The order statistics that p50 and p90 interpolate between, for ``total`` values: index
# k = floor((total - 1) * q) and k + 1 (docs/health.md §1.3). Integer arithmetic only, so
# the same SQL runs on PostgreSQL and SQLite.
_PERCENTILE_SQL = """
SELECT project_id, release_id, MAX(total) AS total,
       MIN(CASE WHEN cum > (total - 1) / 2 THEN duration_ms END) AS p50_low,
       MIN(CASE WHEN cum > (total - 1) / 2 + 1 THEN duration_ms END) AS p50_high,
       MIN(CASE WHEN cum > (total - 1) * 9 / 10 THEN duration_ms END) AS p90_low,
       MIN(CASE WHEN cum > (total - 1) * 9 / 10 + 1 THEN duration_ms END) AS p90_high
FROM (
    SELECT project_id, release_id, duration_ms,
           CAST(SUM(n) OVER (PARTITION BY project_id, release_id ORDER BY duration_ms)
                AS BIGINT) AS cum,
           CAST(SUM(n) OVER (PARTITION BY project_id, release_id) AS BIGINT) AS total
    FROM ({rows}) AS counted
) AS cumulative
GROUP BY project_id, release_id
"""


def _percentile_sql(sources: Sequence[QuerySet[Any]]) -> tuple[str, tuple[Any, ...]]:
    """The query of ``(project_id, release_id, total, p50_low, p50_high, p90_low,
    p90_high)`` over the duration rows of ``sources`` (querysets of :class:`SessionDuration`
    or :class:`SessionDurationDay`, added up): one row per pair, as if each duration were
    listed ``count`` times."""
    arms = [
        rows.annotate(n=F("count")).values_list("project_id", "release_id", "duration_ms", "n")
        for rows in sources
    ]
    stored = arms[0].union(*arms[1:], all=True) if len(arms) > 1 else arms[0]
    sql, params = stored.order_by().query.sql_with_params()
    # One row per pair and bucket, whichever source and environment its counts come from.
    counted = (
        f"SELECT project_id, release_id, duration_ms, SUM(n) AS n FROM ({sql}) AS stored "  # noqa: S608
        "GROUP BY project_id, release_id, duration_ms"
    )
    return _PERCENTILE_SQL.format(rows=counted), params


def _duration_rows(
    env: Q, projects: set[int], releases: set[int], start: datetime
) -> list[QuerySet[Any]]:
    """The duration rows of the window from ``start`` (an hour) to now (docs/health.md
    §9.4): the day rows of the days after ``start``'s day, and the hourly rows of ``start``'s
    day from ``start`` on; when ``start`` is midnight, its whole day is a day row too. Every
    window ends now and no row is after now, so these add up to every hourly row from
    ``start`` on."""
    start = start.astimezone(UTC)
    first_day = start.date() if start.time() == time() else start.date() + timedelta(days=1)
    midnight = datetime.combine(first_day, time(), tzinfo=UTC)
    scope = Q(env, project_id__in=projects, release_id__in=releases)
    sources: list[QuerySet[Any]] = [SessionDurationDay.objects.filter(scope, day__gte=first_day)]
    if start < midnight:
        sources.append(SessionDuration.objects.filter(scope, hour__gte=start, hour__lt=midnight))
    return sources


def _interpolate(total: int, q: Fraction, low: int, high: int | None) -> float:
    """Linear interpolation at ``(total - 1)·q`` between two order statistics, in seconds."""
    fraction = (total - 1) * q % 1  # exact, like the integer division in the SQL
    value = low if not fraction or high is None else low + (high - low) * fraction
    return float(value / 1000)


def _ratio_percent(part: int | None, whole: int | None) -> float | None:
    if not part or not whole:
        return None
    return part / whole * 100


def _env_q(query: HealthQuery) -> Q:
    if query.environment_ids is None:
        return Q()
    return Q(environment_id__in=query.environment_ids)


Pair = tuple[int, int]  # (project id, release id)
SessionHour = tuple[int, int, datetime, int | None]  # project id, release id, hour, sessions


def health_data(
    pairs: Iterable[Pair], query: HealthQuery, now: datetime
) -> dict[Pair, ReleaseHealth]:
    """The health of every ``(project_id, release_id)`` pair of a page, in two queries (the
    rollups; users per pair, project users and durations; a users series adds one).

    Fields, formulas and null rules: docs/health.md §1 and docs/decisions.md.
    """
    wanted = set(pairs)
    if not wanted:
        return {}
    projects = {p for p, _ in wanted}
    # Filtering on ids rather than joining Release lets the planner use the covering indexes.
    releases = {r for _, r in wanted}
    env = _env_q(query)
    summary_start = period_start(query.summary_period, now)
    day_start = hour_of(now - DAY)
    fallback_start = hour_of(now - HAS_DATA_FALLBACK)

    # 1, 2 and 6 (a sessions series): one statement over the rollups (:func:`_rollups`).
    counters, project_sessions, session_hours = _rollups(query, now, projects, releases, env)
    # 3, 4 and 5: users per pair, project users, durations: one statement (:func:`_people`).
    users, project_users, durations = _people(
        _users(query, projects, releases, summary_start=summary_start, day_start=day_start),
        ProjectUserSeen.objects.filter(env, project_id__in=projects, last_hour__gte=day_start),
        _duration_rows(env, projects, releases, summary_start),
    )
    # 6. The stats series.
    series = _stats(wanted, query, now, projects, releases, env, session_hours)

    result: dict[Pair, ReleaseHealth] = {}
    for pair in wanted:
        health = ReleaseHealth(series=series.get(pair) or empty_series(query, now))
        row = counters.get(pair)
        if row is not None:
            n_users, n_crashed_users, n_users_24h = users.get(pair, (0, 0, 0))
            sessions = row["n_sessions"] or 0
            crashed = row["n_crashed"] or 0
            total_users = n_users or 0
            fatal = crashed + (row["n_abnormal"] or 0) + (row["n_unhandled"] or 0)
            health.total_sessions = sessions or None
            health.total_users = total_users or None
            health.sessions_crashed = crashed
            health.sessions_errored = max(0, (row["n_errored"] or 0) - fatal)
            health.crash_free_sessions = 100 - crashed / sessions * 100 if sessions else None
            health.crash_free_users = (
                100 - (n_crashed_users or 0) / total_users * 100 if total_users else None
            )
            health.duration_p50, health.duration_p90 = durations.get(pair, (None, None))
            # Any stored data: the 24 h group is made of ints (docs/decisions.md).
            health.total_sessions_24h = row["n_sessions_24h"] or 0
            health.total_users_24h = n_users_24h or 0
            health.total_project_sessions_24h = project_sessions.get(pair[0]) or 0
            health.total_project_users_24h = project_users.get(pair[0]) or 0
            health.adoption = _ratio_percent(health.total_users_24h, health.total_project_users_24h)
            health.sessions_adoption = _ratio_percent(
                health.total_sessions_24h, health.total_project_sessions_24h
            )
            health.has_data = bool(row["n_updates"]) or (
                query.summary_period != "90d" and row["last_hour"] >= fallback_start
            )
        result[pair] = health
    return result


def _users(
    query: HealthQuery,
    projects: set[int],
    releases: set[int],
    *,
    summary_start: datetime,
    day_start: datetime,
) -> QuerySet[Any, Any]:
    """Per pair, ``(project_id, release_id, users, crashed users, users 24 h)``: the first arm
    of :func:`_people`, aggregated in the database.

    Every window ends now, so its users are the dids whose latest hour is in it: sums of the
    counts by latest hour (docs/health.md §9.3), one row per hour and not per user, for all
    environments (``ReleaseUserLast``) or one (``SessionUserLast``). A did seen in several
    environments counts once only in their seen rows, so a filter of several environments
    counts distinct dids there.
    """
    start = min(summary_start, day_start)
    scope = Q(project_id__in=projects, release_id__in=releases)
    envs = query.environment_ids
    number = BigIntegerField()
    if envs is None or len(set(envs)) == 1:
        in_summary, in_day = Q(hour__gte=summary_start), Q(hour__gte=day_start)
        counts: QuerySet[Any] = (
            ReleaseUserLast.objects.filter(scope, hour__gte=start)
            if envs is None
            else SessionUserLast.objects.filter(scope, hour__gte=start, environment_id=envs[0])
        )
        totals: dict[str, Aggregate] = {
            "n_users": Sum("users", filter=in_summary),
            "n_crashed": Sum("crashed", filter=in_summary),
            "n_day": Sum("users", filter=in_day),
        }
    else:
        counts = SessionUserSeen.objects.filter(_env_q(query), scope, last_hour__gte=start)
        totals = {
            "n_users": Count("did", distinct=True, filter=Q(last_hour__gte=summary_start)),
            "n_crashed": Count(
                "did", distinct=True, filter=Q(last_crashed_hour__gte=summary_start)
            ),
            "n_day": Count("did", distinct=True, filter=Q(last_hour__gte=day_start)),
        }
    return (
        counts.values("project_id", "release_id")
        # BIGINT on every database: PostgreSQL's SUM of BIGINT is NUMERIC.
        .annotate(**{name: Cast(value, number) for name, value in totals.items()})
        .values_list("project_id", "release_id", "n_users", "n_crashed", "n_day")
        .order_by()
    )


_USERS, _PROJECT_USERS, _DURATIONS = 0, 1, 2


def _people(
    users_per_pair: QuerySet[Any, Any],
    project_seen: QuerySet[ProjectUserSeen],
    durations: Sequence[QuerySet[Any]],
) -> tuple[dict[Pair, tuple[int, int, int]], dict[int, int], dict[Pair, tuple[float, float]]]:
    """Users, project users and duration percentiles, in one ``UNION ALL`` statement:

    1. per pair, the distinct users of the summary window, its crashed users and the users of
       the last 24 h (each did counts when its last, or last crashed, hour is in the window):
       ``users_per_pair``, from :func:`_users`;
    2. per project, the distinct users of the last 24 h (across releases);
    3. per pair, the order statistics that p50 and p90 interpolate between.

    Each arm is aggregated in the database; the first column says which arm a row is of.
    """
    users_sql, users_params = users_per_pair.query.sql_with_params()
    project_sql, project_params = (
        project_seen.values("project_id")
        .annotate(total=Count("did", distinct=True))
        .values_list("project_id", "total")
        .order_by()
        .query.sql_with_params()
    )
    durations_sql, durations_params = _percentile_sql(durations)
    # Our own subqueries and column names; values are parameters. Typed NULLs, so that
    # PostgreSQL matches every arm's columns.
    null = "CAST(NULL AS BIGINT)"
    sql = (
        f"SELECT {_USERS}, u.project_id, u.release_id, u.n_users, u.n_crashed, u.n_day, "  # noqa: S608
        f"{null}, {null} FROM ({users_sql}) AS u "
        f"UNION ALL SELECT {_PROJECT_USERS}, p.project_id, {null}, p.total, {null}, {null}, "
        f"{null}, {null} FROM ({project_sql}) AS p "
        f"UNION ALL SELECT {_DURATIONS}, d.project_id, d.release_id, d.total, d.p50_low, "
        f"d.p50_high, d.p90_low, d.p90_high FROM ({durations_sql}) AS d"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*users_params, *project_params, *durations_params])
        rows = cursor.fetchall()
    users: dict[Pair, tuple[int, int, int]] = {}
    project_users: dict[int, int] = {}
    percentiles: dict[Pair, tuple[float, float]] = {}
    for arm, project_id, release_id, first, second, third, fourth, fifth in rows:
        if arm == _USERS:
            users[project_id, release_id] = (first, second, third)
        elif arm == _PROJECT_USERS:
            project_users[project_id] = first
        else:
            percentiles[project_id, release_id] = (
                _interpolate(first, Fraction(1, 2), second, third),
                _interpolate(first, Fraction(9, 10), fourth, fifth),
            )
    return users, project_users, percentiles


_COUNTERS, _PROJECT_SESSIONS, _SESSION_HOURS = 0, 1, 2


def _rollups(
    query: HealthQuery, now: datetime, projects: set[int], releases: set[int], env: Q
) -> tuple[dict[Pair, dict[str, Any]], dict[int, int], list[SessionHour]]:
    """What health reads from ``SessionRollup``, in one ``UNION ALL`` statement:

    1. the counters per pair (summary window, last 24 h, and the last hour with data);
    2. the sessions of each project (all releases) in the last 24 h;
    3. with a sessions series, the sessions per pair and hour since the first bucket (at most
       one row per pair, environment-summed, and hour of the stats period).

    Each arm is aggregated in the database; the first column says which arm a row is of.
    """
    summary_start = period_start(query.summary_period, now)
    day_start = hour_of(now - DAY)
    in_summary = Q(hour__gte=summary_start)
    in_day = Q(hour__gte=day_start)
    number, moment = BigIntegerField(), DateTimeField()

    def null(field: Any) -> Value:
        return Value(None, output_field=field)

    counters = (
        SessionRollup.objects.filter(env, project_id__in=projects, release_id__in=releases)
        .values("project_id", "release_id")
        .annotate(
            arm=Value(_COUNTERS),
            last_hour=Max("hour"),
            n_sessions=Sum("sessions", filter=in_summary),
            n_crashed=Sum("crashed", filter=in_summary),
            n_abnormal=Sum("abnormal", filter=in_summary),
            n_unhandled=Sum("unhandled", filter=in_summary),
            n_errored=Sum("errored", filter=in_summary),
            n_updates=Sum("updates", filter=in_summary),
            n_sessions_24h=Sum("sessions", filter=in_day),
        )
        .values_list(
            "arm",
            "project_id",
            "release_id",
            "last_hour",
            "n_sessions",
            "n_crashed",
            "n_abnormal",
            "n_unhandled",
            "n_errored",
            "n_updates",
            "n_sessions_24h",
        )
        .order_by()
    )
    padding = {f"pad{i}": null(number) for i in range(6)}
    project_sessions = (
        SessionRollup.objects.filter(env, in_day, project_id__in=projects)
        .values("project_id")
        .annotate(
            arm=Value(_PROJECT_SESSIONS),
            no_release=null(number),
            no_hour=null(moment),
            total=Sum("sessions"),
            **padding,
        )
        .values_list("arm", "project_id", "no_release", "no_hour", "total", *padding)
        .order_by()
    )
    arms: list[QuerySet[Any, Any]] = [project_sessions]
    if query.stats_period and query.stat != "users":
        first = datetime.fromtimestamp(stats_buckets(query.stats_period, now)[0], tz=UTC)
        arms.append(
            SessionRollup.objects.filter(
                env, project_id__in=projects, release_id__in=releases, hour__gte=first
            )
            .values("project_id", "release_id", "hour")
            .annotate(arm=Value(_SESSION_HOURS), total=Sum("sessions"), **padding)
            .values_list("arm", "project_id", "release_id", "hour", "total", *padding)
            .order_by()
        )
    names = ("n_sessions", "n_crashed", "n_abnormal", "n_unhandled", "n_errored", "n_updates")
    by_pair: dict[Pair, dict[str, Any]] = {}
    by_project: dict[int, int] = {}
    hours: list[SessionHour] = []
    for arm, project_id, release_id, hour, total, *rest in counters.union(*arms, all=True):
        if arm == _COUNTERS:
            row = dict(zip(names, (total, *rest[:5]), strict=True))
            row.update(last_hour=hour, n_sessions_24h=rest[5])
            by_pair[(project_id, release_id)] = row
        elif arm == _PROJECT_SESSIONS:
            by_project[project_id] = total
        else:
            hours.append((project_id, release_id, hour, total))
    return by_pair, by_project, hours


def _stats(
    wanted: set[Pair],
    query: HealthQuery,
    now: datetime,
    projects: set[int],
    releases: set[int],
    env: Q,
    session_hours: list[SessionHour],
) -> dict[Pair, list[tuple[int, int]]]:
    """``[(ts, value), …]`` per pair with data; sessions per bucket (from ``session_hours``,
    read by :func:`_rollups`), or distinct users (one query)."""
    if not query.stats_period:
        return {}
    rollup, _ = STATS_PERIODS[query.stats_period]
    buckets = stats_buckets(query.stats_period, now)
    first = datetime.fromtimestamp(buckets[0], tz=UTC)
    end = buckets[-1] + rollup
    index = {ts: i for i, ts in enumerate(buckets)}
    values: dict[Pair, list[int]] = {}

    def slot(hour: datetime) -> int | None:
        ts = int(hour.timestamp())
        if ts >= end:
            return None
        return index.get(ts - ts % rollup)

    scope = Q(env, project_id__in=projects, release_id__in=releases, hour__gte=first)
    if query.stat == "users":
        seen: dict[Pair, list[set[Any]]] = {}
        for project_id, release_id, hour, did in (
            SessionUser.objects.filter(scope)
            .values_list("project_id", "release_id", "hour", "did")
            .order_by()
        ):
            i = slot(hour)
            if i is not None and (project_id, release_id) in wanted:
                sets = seen.setdefault((project_id, release_id), [set() for _ in buckets])
                sets[i].add(did)
        values = {pair: [len(s) for s in sets] for pair, sets in seen.items()}
    else:
        for project_id, release_id, hour, sessions in session_hours:
            i = slot(hour)
            if i is not None and (project_id, release_id) in wanted:
                counts = values.setdefault((project_id, release_id), [0] * len(buckets))
                counts[i] += sessions or 0
    return {pair: list(zip(buckets, counts, strict=True)) for pair, counts in values.items()}


def session_bounds(
    project_id: int, release_id: int, environment_ids: list[int] | None = None
) -> tuple[datetime | None, datetime | None]:
    """Earliest and latest session start (hour-truncated) of a project and release."""
    rollups = SessionRollup.objects.filter(project_id=project_id, release_id=release_id)
    if environment_ids is not None:
        rollups = rollups.filter(environment_id__in=environment_ids)
    bounds = rollups.aggregate(lower=Min("hour"), upper=Max("hour"))
    return bounds["lower"], bounds["upper"]
