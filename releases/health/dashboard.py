"""Health reads for the admin's pages: outcomes per bucket, main environments, adoption rows.

Each function is one query, whatever the number of releases or buckets, and returns plain
data; the admin draws it (docs/admin.md). Numbers follow the same formulas as ``healthData``
and the sessions endpoint (``series.py``), so the pages and the API agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, Sum

from ..models import ReleaseProjectEnvironment, SessionRollup
from .periods import DAY, STATS_PERIODS, hour_of, stats_buckets
from .series import STATUS, SeriesQuery, session_groups

#: The outcomes a chart stacks, bottom first (``session.status`` of the sessions endpoint).
OUTCOMES = ("healthy", "errored", "abnormal", "crashed", "unhandled")
#: The environment taken as a project's main one when it has sessions there.
PRODUCTION = "production"
#: How far back a project's sessions decide its main environment.
MAIN_ENVIRONMENT_WINDOW = timedelta(days=90)

Pair = tuple[int, int]  # (project id, release id)


@dataclass(frozen=True)
class OutcomeBucket:
    """Sessions started in ``[start, end)`` by outcome; ``crash_free`` in percent."""

    start: datetime
    end: datetime
    counts: dict[str, int]

    @property
    def sessions(self) -> int:
        return sum(self.counts.values())

    @property
    def crash_free(self) -> float | None:
        total = self.sessions
        return 100 - self.counts["crashed"] / total * 100 if total else None


def outcome_buckets(
    project_id: int,
    release_id: int,
    *,
    period: str,
    now: datetime,
    environment_ids: Iterable[int] | None = None,
) -> list[OutcomeBucket]:
    """The buckets of ``period`` (hours for ``24h``, days for ``7d``-``30d``, three days for
    ``90d``, as ``stats`` in ``healthData``), oldest first, with sessions by outcome.

    Outcomes are the sessions endpoint's ``session.status`` values: ``errored`` leaves out the
    fatal ones, ``healthy`` is the rest, and the five add up to the sessions started. One
    query.
    """
    rollup, _ = STATS_PERIODS[period]
    starts = stats_buckets(period, now)
    first = datetime.fromtimestamp(starts[0], tz=UTC)
    end = datetime.fromtimestamp(starts[-1] + rollup, tz=UTC)
    where = Q(release_id=release_id)
    if environment_ids is not None:
        where &= Q(environment_id__in=list(environment_ids))
    groups = session_groups(
        SeriesQuery(
            project_ids=(project_id,),
            start=first,
            end=end,
            interval=rollup,
            fields=("sum(session)",),
            group_by=(STATUS,),
            where=where,
        )
    )
    by_status = {g["by"][STATUS]: g["series"]["sum(session)"] for g in groups}
    step = timedelta(seconds=rollup)
    return [
        OutcomeBucket(
            start=first + i * step,
            end=first + (i + 1) * step,
            counts={outcome: by_status[outcome][i] or 0 for outcome in OUTCOMES},
        )
        for i in range(len(starts))
    ]


@dataclass(frozen=True)
class MainEnvironment:
    id: int
    name: str


def main_environments(project_ids: Iterable[int], now: datetime) -> dict[int, MainEnvironment]:
    """Each project's main environment: ``production`` when the project had sessions there
    in the last 90 days, otherwise the environment with most sessions in the last 24 hours
    (ties: most in 90 days, then name). Projects without sessions are left out. One query.
    """
    wanted = set(project_ids)
    if not wanted:
        return {}
    day = Q(hour__gte=hour_of(now - DAY))
    rows = (
        SessionRollup.objects.filter(
            project_id__in=wanted, hour__gte=hour_of(now - MAIN_ENVIRONMENT_WINDOW)
        )
        .values("project_id", "environment_id", "environment__name")
        .annotate(day=Sum("sessions", filter=day), total=Sum("sessions"))
        .order_by()
    )
    ranked = sorted(
        rows,
        key=lambda r: (
            r["environment__name"] != PRODUCTION,
            -(r["day"] or 0),
            -(r["total"] or 0),
            r["environment__name"],
        ),
    )
    found: dict[int, MainEnvironment] = {}
    for row in ranked:
        main = MainEnvironment(row["environment_id"], row["environment__name"])
        found.setdefault(row["project_id"], main)
    return found


@dataclass(frozen=True)
class AdoptionRow:
    """A release's adoption in one project and environment (``ReleaseProjectEnvironment``)."""

    project_id: int
    release_id: int
    environment_id: int
    environment: str
    adopted: datetime | None
    unadopted: datetime | None

    @property
    def stage(self) -> str:
        if self.adopted is not None and self.unadopted is None:
            return "adopted"
        if self.adopted is not None:
            return "replaced"
        return "low_adoption"


def adoption_rows(pairs: Iterable[Pair]) -> dict[Pair, list[AdoptionRow]]:
    """The adoption rows of each (project id, release id) pair, by environment name. One query."""
    wanted = set(pairs)
    if not wanted:
        return {}
    found: dict[Pair, list[AdoptionRow]] = {}
    for row in (
        ReleaseProjectEnvironment.objects.filter(
            project_id__in={p for p, _ in wanted}, release_id__in={r for _, r in wanted}
        )
        .values_list(
            "project_id",
            "release_id",
            "environment_id",
            "environment__name",
            "adopted",
            "unadopted",
        )
        .order_by("environment__name", "environment_id")
    ):
        adoption = AdoptionRow(*row)
        pair = (adoption.project_id, adoption.release_id)
        if pair in wanted:
            found.setdefault(pair, []).append(adoption)
    return found
