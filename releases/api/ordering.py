"""``sort`` of the release list: every ordering ends with a unique tiebreaker for stable pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import F, QuerySet

from ..health import sorts
from ..models import Project
from .search import semver_ordering


def order_releases(
    rows: QuerySet,
    sort: str,
    *,
    flattened: bool,
    projects: Sequence[Project],
    environment_ids: Sequence[int] | None,
    summary_period: str,
    now: datetime,
) -> QuerySet:
    """``rows`` (releases, or release-project links when ``flattened``) ordered by ``sort``.

    ``sort`` is one of ``params.LIST_SORTS``; the health sorts need flattened rows.
    """
    prefix = "release__" if flattened else ""
    newest = [F(f"{prefix}date_added").desc(), F(f"{prefix}id").desc()]
    if flattened:
        newest.append(F("project_id").asc())
    if sort == "build":
        rows = rows.filter(**{f"{prefix}build_number__isnull": False})
        return rows.order_by(F(f"{prefix}build_number").desc(), *newest)
    if sort == "semver":
        return rows.order_by(*semver_ordering(prefix), *newest[2:])
    if sort == "adoption":
        adopted = sorts.adoption_sort_value(
            project="project_id" if flattened else None,
            project_ids=None if flattened else [p.pk for p in projects],
            environment_ids=environment_ids,
            release="release_id" if flattened else "pk",
        )
        return rows.annotate(adopted_at=adopted).order_by(
            F("adopted_at").desc(nulls_last=True), *newest
        )
    if sort in sorts.HEALTH_SORTS:
        return sorts.order_by_health(
            rows, sort, now=now, summary_period=summary_period, environment_ids=environment_ids
        )
    return rows.order_by(*newest)
