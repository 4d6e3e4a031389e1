"""Health in queries: ordering releases by session statistics or adoption, and stage filters."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, NullIf

from ..models import (
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    ReleaseUserLast,
    SessionRollup,
    SessionUserLast,
    SessionUserSeen,
)
from .periods import DAY, hour_of, period_start

#: ``sort`` values that order by session statistics (list: require ``flatten=1``).
HEALTH_SORTS = (
    "crash_free_sessions",
    "crash_free_users",
    "sessions",
    "users",
    "sessions_24h",
    "users_24h",
)
#: ``release.stage`` values and the release-project-environment rows they match.
STAGES: dict[str, Q] = {
    "adopted": Q(adopted__isnull=False, unadopted__isnull=True),
    "replaced": Q(adopted__isnull=False, unadopted__isnull=False),
    "low_adoption": Q(adopted__isnull=True),
}


def health_sort_value(
    sort: str,
    *,
    now: datetime,
    summary_period: str = "14d",
    project: int | str = "project_id",
    release: str = "release_id",
    environment_ids: Iterable[int] | None = None,
) -> Subquery:
    """A float per row, larger first, NULL when the row has no data for ``sort``.

    ``project`` is a project id, or the name of the row's project-id field; ``release`` names
    the row's release-id field (``"pk"`` on a Release queryset). ``sessions``/``users`` count
    in the summary window, the ``_24h`` variants in the last 24 h; the ``crash_free_*`` sorts
    rank by crash *rate*, so the least crash-free release comes first (docs/health.md §4).
    """
    if sort not in HEALTH_SORTS:
        raise ValueError(f"not a health sort: {sort}")
    start = hour_of(now - DAY) if sort.endswith("_24h") else period_start(summary_period, now)
    lookup = Q(
        project_id=project if isinstance(project, int) else OuterRef(project),
        release_id=OuterRef(release),
    )
    envs = list(environment_ids) if environment_ids is not None else None
    as_float = FloatField()
    model: Any
    if sort in ("sessions", "sessions_24h", "crash_free_sessions"):
        model = SessionRollup
        lookup &= Q(hour__gte=start)
        if envs is not None:
            lookup &= Q(environment_id__in=envs)
        total: Any = Cast(Sum("sessions"), as_float)
        part: Any = Cast(Sum("crashed"), as_float)
    elif envs is None or len(set(envs)) == 1:
        # The users of healthData (reads._users): sums of the counts by latest hour, for all
        # environments or one.
        model = ReleaseUserLast if envs is None else SessionUserLast
        lookup &= Q(hour__gte=start)
        if envs is not None:
            lookup &= Q(environment_id=envs[0])
        total = Cast(Sum("users"), as_float)
        part = Cast(Sum("crashed"), as_float)
    else:
        # Several environments: distinct dids of their seen rows.
        model = SessionUserSeen
        lookup &= Q(last_hour__gte=start, environment_id__in=envs)
        total = Cast(Count("did", distinct=True), as_float)
        part = Cast(Count("did", distinct=True, filter=Q(last_crashed_hour__gte=start)), as_float)
    value = (
        part / NullIf(total, 0.0) if sort.startswith("crash_free") else NullIf(total, Value(0.0))
    )
    rows = (
        model.objects.filter(lookup)
        .values("release_id")
        .annotate(value=value)
        .values("value")
        .order_by()
    )
    return Subquery(rows[:1], output_field=as_float)


def order_by_health(
    links: QuerySet[ReleaseProject],
    sort: str,
    *,
    now: datetime,
    summary_period: str = "14d",
    environment_ids: Iterable[int] | None = None,
) -> QuerySet[ReleaseProject]:
    """Release-project rows (``flatten=1``) by ``sort``: data first, then the rest newest first.

    The ordering is total (it ends in unique fields), so offset pagination visits each row
    once.
    """
    value = health_sort_value(
        sort, now=now, summary_period=summary_period, environment_ids=environment_ids
    )
    return links.annotate(health_value=value).order_by(
        F("health_value").desc(nulls_last=True), "-release__date_added", "-release_id", "project_id"
    )


def health_neighbours(
    candidates: QuerySet[Release],
    current: Release,
    *,
    project_id: int,
    sort: str,
    now: datetime,
    summary_period: str = "14d",
    environment_ids: Iterable[int] | None = None,
) -> tuple[str | None, str | None]:
    """``(next, prev)`` versions around ``current`` in the health-sorted list of a project.

    As on the list, rows are ordered by the health value (data first), then newest first;
    ``next`` is the release just before ``current`` in that list (for ``date``: the newer one)
    and ``prev`` the one just after. Three queries.
    """
    envs = list(environment_ids) if environment_ids is not None else None

    def annotate(queryset: QuerySet[Release]) -> QuerySet[Any]:
        value = health_sort_value(
            sort,
            now=now,
            summary_period=summary_period,
            project=project_id,
            release="pk",
            environment_ids=envs,
        )
        return queryset.annotate(
            health_value=value,
            health_has=Case(
                When(health_value__isnull=True, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            health_key=Coalesce("health_value", Value(0.0), output_field=FloatField()),
        )

    mine = annotate(Release.objects.filter(pk=current.pk)).values("health_has", "health_key").get()
    has, key = mine["health_has"], mine["health_key"]
    date, pk = current.date_added, current.pk
    same = Q(health_has=has, health_key=key)
    earlier_in_list = (
        Q(health_has__gt=has)
        | Q(health_has=has, health_key__gt=key)
        | (same & (Q(date_added__gt=date) | Q(date_added=date, pk__gt=pk)))
    )
    later_in_list = (
        Q(health_has__lt=has)
        | Q(health_has=has, health_key__lt=key)
        | (same & (Q(date_added__lt=date) | Q(date_added=date, pk__lt=pk)))
    )
    annotated = annotate(candidates)
    following = (
        annotated.filter(earlier_in_list)
        .order_by("health_has", "health_key", "date_added", "pk")
        .values_list("version", flat=True)
        .first()
    )
    preceding = (
        annotated.filter(later_in_list)
        .order_by("-health_has", "-health_key", "-date_added", "-pk")
        .values_list("version", flat=True)
        .first()
    )
    return following, preceding


# -- Adoption stages in queries --------------------------------------------------------------


def stage_filter(
    stages: Iterable[str],
    *,
    environment_id: int,
    project_ids: Iterable[int],
    release: str = "pk",
) -> Exists:
    """Rows whose release is in one of ``stages`` in that environment and those projects.

    For ``release.stage:`` on a Release queryset (``release="pk"``) or a ReleaseProject one
    (``release="release_id"``). An unknown stage raises ``ValueError``.
    """
    wanted = list(stages)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown or not wanted:
        raise ValueError("Unsupported release.stage value.")
    return Exists(
        ReleaseProjectEnvironment.objects.filter(
            reduce(or_, (STAGES[s] for s in wanted)),
            release_id=OuterRef(release),
            environment_id=environment_id,
            project_id__in=list(project_ids),
        )
    )


def adoption_sort_value(
    *,
    project_ids: Iterable[int] | None = None,
    project: str | None = None,
    environment_ids: Iterable[int] | None = None,
    release: str = "pk",
) -> Subquery:
    """Latest ``adopted`` of the row's release (``sort=adoption``: descending, nulls last).

    Give ``project_ids`` (a Release queryset) or ``project`` (the row's project-id field).
    """
    lookup = Q(release_id=OuterRef(release), adopted__isnull=False)
    if project is not None:
        lookup &= Q(project_id=OuterRef(project))
    elif project_ids is not None:
        lookup &= Q(project_id__in=list(project_ids))
    if environment_ids is not None:
        lookup &= Q(environment_id__in=list(environment_ids))
    return Subquery(
        ReleaseProjectEnvironment.objects.filter(lookup).order_by("-adopted").values("adopted")[:1]
    )
