"""Release endpoints: thin views over filters, serializers and health."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone
from rest_framework import viewsets
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import OrganizationReleasePermission
from accounts.views import OrganizationEndpointMixin

from . import health
from .filters import (
    ReleaseDateRangeFilter,
    ReleaseEnvironmentFilter,
    ReleaseProjectFilter,
    ReleaseQueryFilter,
    ReleaseStatusFilter,
    free_text_q,
    get_environments,
    semver_ordering,
)
from .models import (
    SERIALIZER_RELATIONS,
    Environment,
    Project,
    Release,
    ReleaseProject,
)
from .pagination import CursorPagination
from .params import (
    SLUG_RE,
    SORTS_DETAILS,
    parse_bool,
    parse_health_stats_period,
    parse_project_id_or_slug,
    parse_summary_period,
)
from .serializers import ReleaseSerializer

NOT_FOUND = "The requested resource does not exist"


LIST_SORTS = ("date", "build", "semver", "adoption", *health.HEALTH_SORTS)


class ReleaseViewSet(OrganizationEndpointMixin, viewsets.GenericViewSet):
    """``/api/0/organizations/{org}/releases/`` and ``…/releases/{version}/``."""

    permission_classes = [OrganizationReleasePermission]
    serializer_class = ReleaseSerializer
    lookup_field = "version"
    lookup_value_regex = r"[^/]+"
    # The list's filters; the details endpoint narrows its prev/next candidates with them too
    # (without the date window, which Sentry does not apply there).
    filter_backends = [
        ReleaseProjectFilter,
        ReleaseEnvironmentFilter,
        ReleaseStatusFilter,
        ReleaseDateRangeFilter,
        ReleaseQueryFilter,
    ]
    navigation_filter_backends = [
        ReleaseProjectFilter,
        ReleaseEnvironmentFilter,
        ReleaseStatusFilter,
        ReleaseQueryFilter,
    ]
    pagination_class = CursorPagination

    @property
    def status_allows_empty(self) -> bool:
        return self.action == "list"

    def get_queryset(self) -> QuerySet[Release]:
        return Release.objects.for_org(self.organization).with_serializer_relations()

    def get_selected_projects(self) -> list[Project]:
        return self._selected_projects

    def get_environments(self) -> list[Environment] | None:
        if not hasattr(self, "_environments"):
            self._environments = get_environments(self.request, self.organization)
        return self._environments

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = request.query_params
        with_health = parse_bool(params, "health")
        with_adoption = parse_bool(params, "adoptionStages")
        flatten = parse_bool(params, "flatten")
        summary_period = parse_summary_period(params)
        stats_period = parse_health_stats_period(params, health=with_health)
        health_stat = params.get("healthStat") or "sessions"
        if health_stat not in ("sessions", "users"):
            raise ParseError("invalid healthStat")
        sort = params.get("sort") or "date"
        if sort not in LIST_SORTS:
            raise ParseError("invalid sort")
        if sort in health.HEALTH_SORTS and not flatten:
            raise ParseError("sorting by crash statistics requires flattening (flatten=1)")

        self._selected_projects = self._list_projects()
        if not self._selected_projects:
            return Response([])
        environments = self.get_environments()
        releases = Release.objects.for_org(self.organization)
        for backend in self.filter_backends:
            releases = backend().filter_queryset(request, releases, self)

        paginator = self.pagination_class()
        if flatten:
            rows = ReleaseProject.objects.filter(
                release__in=releases, project__in=self._selected_projects
            ).select_related(*(f"release__{name}" for name in SERIALIZER_RELATIONS))
            rows = rows.prefetch_related("release__owner__emails")
            page = []
            ordered = self._ordered(rows, sort, "release__", summary_period=summary_period)
            for row in paginator.paginate_queryset(ordered, request):
                row.release.narrowed_project_id = row.project_id
                page.append(row.release)
        else:
            rows = releases.with_serializer_relations()
            ordered = self._ordered(rows, sort, "", summary_period=summary_period)
            page = paginator.paginate_queryset(ordered, request)

        environment_ids = [e.pk for e in environments] if environments is not None else None
        options = health.HealthOptions(
            summary_period,
            stats_period,
            stat=health_stat,
            environment_ids=tuple(environment_ids) if environment_ids is not None else None,
        )
        context = self.get_serializer_context() | {
            "health": options if with_health else None,
            "adoption_stages": with_adoption,
            "environments": environment_ids,
        }
        data = ReleaseSerializer(page, many=True, context=context).data
        return paginator.get_paginated_response(data)

    def _list_projects(self) -> list[Project]:
        """``project`` (ids or slugs, repeatable; ``-1``/``$all``: every accessible project)
        and ``projectSlug``; without them, the caller's member projects. Asking for a
        project the caller cannot access is a 403."""
        params = self.request.query_params
        values = [v for v in params.getlist("project") + params.getlist("projectSlug") if v]
        if not values:
            return list(self.access.member_projects().order_by("pk"))
        accessible = self.access.accessible_projects()
        if any(v in ("-1", "$all") for v in values):
            return list(accessible.order_by("pk"))
        ids, slugs = set(), set()
        for value in values:
            if value.isdigit():
                ids.add(int(value))
            elif SLUG_RE.match(value):
                slugs.add(value)
            else:
                raise ParseError("Invalid project parameter. Values must be numbers or slugs.")
        projects = list(accessible.filter(Q(pk__in=ids) | Q(slug__in=slugs)).order_by("pk"))
        found = {p.pk for p in projects} | {p.slug for p in projects}
        if not ids | slugs <= found:
            raise PermissionDenied()
        return projects

    def _ordered(self, rows: QuerySet, sort: str, prefix: str, *, summary_period: str) -> QuerySet:
        """Order by ``sort``; every ordering ends with a unique tiebreaker for stable pages.

        ``prefix`` is ``"release__"`` for flattened rows (release-project links).
        """
        newest = [F(f"{prefix}date_added").desc(), F(f"{prefix}id").desc()]
        if prefix:
            newest.append(F("project_id").asc())
        environments = self.get_environments()
        environment_ids = [e.pk for e in environments] if environments is not None else None
        if sort == "build":
            rows = rows.filter(**{f"{prefix}build_number__isnull": False})
            return rows.order_by(F(f"{prefix}build_number").desc(), *newest)
        if sort == "semver":
            return rows.order_by(*semver_ordering(prefix), *newest[2:])
        if sort == "adoption":
            adopted = health.adoption_sort_value(
                project="project_id" if prefix else None,
                project_ids=None if prefix else [p.pk for p in self._selected_projects],
                environment_ids=environment_ids,
                release="release_id" if prefix else "pk",
            )
            return rows.annotate(adopted_at=adopted).order_by(
                F("adopted_at").desc(nulls_last=True), *newest
            )
        if sort in health.HEALTH_SORTS:  # flattened rows only
            return health.order_by_health(
                rows,
                sort,
                now=timezone.now(),
                summary_period=summary_period,
                environment_ids=environment_ids,
            )
        return rows.order_by(*newest)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = request.query_params
        with_health = parse_bool(params, "health")
        with_adoption = parse_bool(params, "adoptionStages")
        summary_period = parse_summary_period(params)
        stats_period = parse_health_stats_period(params, health=with_health)

        release = self.get_queryset().filter(version=kwargs["version"]).first()
        if release is None:
            raise NotFound(NOT_FOUND)
        accessible = self.access.accessible_projects()
        if not release.projects.filter(pk__in=accessible.values("pk")).exists():
            raise NotFound(NOT_FOUND)

        project = self._requested_project(accessible, release)
        meta: dict[str, Any] = {}
        if project is not None:
            if with_health:
                release.narrowed_project_id = project.pk  # type: ignore[attr-defined]
            meta = self._current_project_meta(release, project)

        context = self.get_serializer_context() | {
            "health": health.HealthOptions(summary_period, stats_period) if with_health else None,
            "adoption_stages": with_adoption,
            "current_project_meta": meta,
        }
        return Response(ReleaseSerializer(release, context=context).data)

    def _requested_project(self, accessible: QuerySet[Project], release: Release) -> Project | None:
        """``project`` (or its documented alias ``project_id``) by id or slug."""
        params = self.request.query_params
        raw = params.get("project") if "project" in params else params.get("project_id")
        if not raw:
            return None
        value = parse_project_id_or_slug(raw)
        lookup = Q(pk=value) if isinstance(value, int) else Q(slug=value)
        project = accessible.filter(lookup).first()
        if project is None or not release.projects.filter(pk=project.pk).exists():
            raise NotFound(NOT_FOUND)
        return project

    def _current_project_meta(self, release: Release, project: Project) -> dict[str, Any]:
        """Session bounds and prev/next/first/last releases of the project (§1.5)."""
        self._selected_projects = [project]
        environments = self.get_environments()
        env_names = [e.name for e in environments] if environments is not None else None
        lower, upper = health.session_bounds(project.pk, release.version, env_names)
        sort = self.request.query_params.get("sort") or "date"
        if sort not in SORTS_DETAILS:
            raise ParseError("invalid sort")

        candidates = Release.objects.for_org(self.organization)
        for backend in self.navigation_filter_backends:
            candidates = backend().filter_queryset(self.request, candidates, self)
        newer = Q(date_added__gt=release.date_added) | Q(
            date_added=release.date_added, pk__gt=release.pk
        )
        older = Q(date_added__lt=release.date_added) | Q(
            date_added=release.date_added, pk__lt=release.pk
        )
        in_project = ReleaseProjectFilter().filter_queryset(
            self.request, Release.objects.for_org(self.organization), self
        )
        in_project = ReleaseEnvironmentFilter().filter_queryset(self.request, in_project, self)
        versions = in_project.values_list("version", flat=True)
        if sort == "date":
            following = _first(candidates.filter(newer).order_by("date_added", "pk"))
            preceding = _first(candidates.filter(older).order_by("-date_added", "-pk"))
        else:
            # DECISIONS.md: every documented sort orders prev/next, as the list would.
            following, preceding = health.health_neighbours(
                candidates,
                release,
                project_id=project.pk,
                sort=sort,
                now=timezone.now(),
                summary_period=parse_summary_period(self.request.query_params),
                environment_ids=[e.pk for e in environments] if environments is not None else None,
            )
        return {
            "nextReleaseVersion": following,
            "prevReleaseVersion": preceding,
            "firstReleaseVersion": versions.order_by("date_added", "pk").first(),
            "lastReleaseVersion": versions.order_by("-date_added", "-pk").first(),
            "sessionsLowerBound": _bound(lower),
            "sessionsUpperBound": _bound(upper),
        }


def _first(queryset: QuerySet[Release]) -> str | None:
    return queryset.values_list("version", flat=True).first()


def _bound(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


class ProjectReleaseViewSet(OrganizationEndpointMixin, viewsets.GenericViewSet):
    """``/api/0/projects/{org}/{project}/releases/``: a project's releases, newest first.

    ``query`` is a case-insensitive substring of the version, as in Sentry.
    """

    permission_classes = [OrganizationReleasePermission]
    serializer_class = ReleaseSerializer
    pagination_class = CursorPagination

    @cached_property
    def project(self) -> Project:
        project = (
            self.access.accessible_projects().filter(slug=self.kwargs["project_id_or_slug"]).first()
        )
        if project is None:
            raise NotFound(NOT_FOUND)
        return project

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        releases = (
            Release.objects.for_org(self.organization)
            .filter(projects=self.project)
            .with_serializer_relations()
            .order_by("-date_added", "-id")
        )
        query = request.query_params.get("query", "")
        if query:
            releases = releases.filter(free_text_q(query))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(releases, request)
        data = ReleaseSerializer(page, many=True, context=self.get_serializer_context()).data
        return paginator.get_paginated_response(data)
