"""Session statistics over time (``GET /organizations/{org}/sessions/``), from the rollups.

Every number comes from the tables :mod:`releases.health.reads` reads for ``healthData``, with
the same formulas, so the two always agree for the same window (docs/sessions.md):

- session counts and ``session.status`` from :class:`SessionRollup`; ``errored`` excludes the
  fatal statuses (crashed, abnormal, unhandled) as ``sessionsErrored`` does, and ``healthy``
  is what remains;
- distinct users from :class:`SessionUser` (per bucket) and, for user crash rates, from
  :class:`SessionUserSeen`;
- durations from :class:`SessionDuration`, interpolated like ``durationP50`` (the hourly rows,
  not ``healthData``'s day rows: buckets go down to the hour, and a day row of the retention
  cutoff's day still holds hours deleted from the rollups; docs/health.md §9.3).

Each source is one query whose rows are per group and hour (users: per group, hour and
user), so the cost does not grow with the number of sessions. Results are plain data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from django.db.models import Count, Q, Sum

from ..models import SessionDuration, SessionRollup, SessionUser, SessionUserSeen

# groupBy names and the column each reads (session.status is derived, not stored).
DIMENSIONS: dict[str, str] = {
    "project": "project_id",
    "release": "release__version",
    "environment": "environment__name",
}
STATUS = "session.status"
STATUSES = ("healthy", "errored", "crashed", "abnormal", "unhandled")
SESSION_FIELDS = ("sum(session)", "crash_rate(session)", "crash_free_rate(session)")
USER_RATE_FIELDS = ("crash_rate(user)", "crash_free_rate(user)")
PERCENTILES: dict[str, Fraction] = {
    "p50(session.duration)": Fraction(1, 2),
    "p75(session.duration)": Fraction(3, 4),
    "p90(session.duration)": Fraction(9, 10),
    "p95(session.duration)": Fraction(19, 20),
    "p99(session.duration)": Fraction(99, 100),
}
DURATION_FIELDS = (*PERCENTILES, "avg(session.duration)", "max(session.duration)")
FIELDS = (*SESSION_FIELDS, "count_unique(user)", *USER_RATE_FIELDS, *DURATION_FIELDS)

Key = tuple[Any, ...]


@dataclass(frozen=True)
class SeriesQuery:
    """What to count: projects, the aligned window ``[start, end)`` cut in ``interval``
    seconds, the fields, the groupBy names and a filter over the rollups' release and
    environment (``Q`` on ``release__version`` / ``environment__name`` / ``environment_id``).
    """

    project_ids: tuple[int, ...]
    start: datetime
    end: datetime
    interval: int
    fields: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: Q = field(default_factory=Q)

    @property
    def buckets(self) -> int:
        return int((self.end - self.start).total_seconds()) // self.interval


@dataclass
class _Group:
    n: int
    counters: list[list[int]] = field(init=False)  # sessions, crashed, abnormal, unhandled, errored
    users: list[set[Any]] = field(init=False)
    all_users: set[Any] = field(default_factory=set)
    seen_users: int = 0
    crashed_users: int = 0
    durations: list[Counter[int]] = field(init=False)
    all_durations: Counter[int] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.counters = [[0] * 5 for _ in range(self.n)]
        self.users = [set() for _ in range(self.n)]
        self.durations = [Counter() for _ in range(self.n)]


def session_groups(query: SeriesQuery) -> list[dict[str, Any]]:
    """``[{"by", "totals", "series"}]``, one per group that has data (always one group
    without ``groupBy``; every status when grouping by ``session.status``), ordered by the
    ``by`` values."""
    dims = [name for name in query.group_by if name != STATUS]
    columns = [DIMENSIONS[name] for name in dims]
    n = query.buckets
    start_ts = int(query.start.timestamp())
    groups: dict[Key, _Group] = {}

    def group(row: dict[str, Any]) -> _Group:
        key = tuple(row[column] for column in columns)
        if key not in groups:
            groups[key] = _Group(n)
        return groups[key]

    def slot(hour: datetime) -> int:
        return (int(hour.timestamp()) - start_ts) // query.interval

    in_window = Q(
        query.where,
        project_id__in=query.project_ids,
        hour__gte=query.start,
        hour__lt=query.end,
    )
    wanted = set(query.fields)
    if wanted & set(SESSION_FIELDS) or STATUS in query.group_by:
        for row in (
            SessionRollup.objects.filter(in_window)
            .values(*columns, "hour")
            .annotate(
                s=Sum("sessions"),
                c=Sum("crashed"),
                a=Sum("abnormal"),
                u=Sum("unhandled"),
                e=Sum("errored"),
            )
            .order_by()
        ):
            counters = group(row).counters[slot(row["hour"])]
            for i, name in enumerate(("s", "c", "a", "u", "e")):
                counters[i] += row[name] or 0
    if "count_unique(user)" in wanted:
        for row in SessionUser.objects.filter(in_window).values(*columns, "hour", "did").order_by():
            found = group(row)
            found.users[slot(row["hour"])].add(row["did"])
            found.all_users.add(row["did"])
    if wanted & set(USER_RATE_FIELDS):
        # Users of a window that ends now: each did's latest (crashed) hour, as healthData.
        seen = SessionUserSeen.objects.filter(
            query.where, project_id__in=query.project_ids, last_hour__gte=query.start
        )
        counts = {
            "users": Count("did", distinct=True),
            "crashed": Count("did", distinct=True, filter=Q(last_crashed_hour__gte=query.start)),
        }
        # ``values()`` without columns would group by every column: aggregate instead.
        rows = (
            seen.values(*columns).annotate(**counts).order_by()
            if columns
            else [seen.aggregate(**counts)]
        )
        for row in rows:
            if not row["users"]:
                continue
            found = group(row)
            found.seen_users, found.crashed_users = row["users"], row["crashed"]
    if wanted & set(DURATION_FIELDS):
        for row in (
            SessionDuration.objects.filter(in_window)
            .values(*columns, "hour", "duration_ms")
            .annotate(count=Sum("count"))
            .order_by()
        ):
            found = group(row)
            found.durations[slot(row["hour"])][row["duration_ms"]] += row["count"] or 0
            found.all_durations[row["duration_ms"]] += row["count"] or 0

    if not dims and not groups:
        groups[()] = _Group(n)
    statuses: Sequence[str | None] = STATUSES if STATUS in query.group_by else (None,)
    result = []
    for key in sorted(groups, key=lambda k: tuple((v is None, v) for v in k)):
        found = groups[key]
        for status in statuses:
            by: dict[str, Any] = dict(zip(dims, key, strict=True))
            if status is not None:
                by[STATUS] = status
            totals: dict[str, Any] = {}
            series: dict[str, list[Any]] = {}
            for name in query.fields:
                totals[name], series[name] = _values(name, found, status)
            result.append({"by": by, "totals": totals, "series": series})
    return result


def _values(name: str, group: _Group, status: str | None) -> tuple[Any, list[Any]]:
    """The total and the per-bucket values of one field for one group."""
    if name in SESSION_FIELDS:
        total = [sum(column) for column in zip(*group.counters, strict=True)] or [0] * 5
        return _session_value(name, total, status), [
            _session_value(name, counters, status) for counters in group.counters
        ]
    if name == "count_unique(user)":
        return len(group.all_users), [len(users) for users in group.users]
    if name in USER_RATE_FIELDS:
        rate = group.crashed_users / group.seen_users if group.seen_users else None
        if rate is not None and name == "crash_free_rate(user)":
            rate = 1 - rate
        # Per-bucket crashed users are not kept: the series is null (docs/sessions.md).
        return rate, [None] * group.n
    return _duration(name, group.all_durations), [_duration(name, d) for d in group.durations]


def _session_value(name: str, counters: Sequence[int], status: str | None) -> int | float | None:
    sessions, crashed, abnormal, unhandled, errored = counters
    if name == "sum(session)":
        if status is None:
            return sessions
        fatal = crashed + abnormal + unhandled
        by_status = {
            "healthy": max(0, sessions - max(errored, fatal)),
            "errored": max(0, errored - fatal),
            "crashed": crashed,
            "abnormal": abnormal,
            "unhandled": unhandled,
        }
        return by_status[status]
    if not sessions:
        return None
    rate = crashed / sessions
    return rate if name == "crash_rate(session)" else 1 - rate


def _duration(name: str, counts: Counter[int]) -> float | None:
    """Seconds; percentiles interpolate linearly at ``(n - 1)·q`` like ``durationP50``."""
    total = sum(counts.values())
    if not total:
        return None
    if name == "max(session.duration)":
        return max(counts) / 1000
    if name == "avg(session.duration)":
        return sum(ms * n for ms, n in counts.items()) / total / 1000
    position = (total - 1) * PERCENTILES[name]
    index, fraction = int(position), position % 1
    ordered = sorted(counts.items())
    low: int = ordered[-1][0]
    high: int | None = None
    found_low = False
    seen = 0
    for ms, n in ordered:
        if not found_low and seen + n > index:
            low, found_low = ms, True
        if seen + n > index + 1:
            high = ms
            break
        seen += n
    value = low if not fraction or high is None else low + (high - low) * fraction
    return float(value / 1000)
