"""Release endpoints: thin views over filters, serializers and health."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework import viewsets
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import OrganizationReleasePermission
from accounts.views import OrganizationEndpointMixin

from . import health
from .filters import (
    ReleaseEnvironmentFilter,
    ReleaseProjectFilter,
    ReleaseQueryFilter,
    ReleaseStatusFilter,
    get_environments,
)
from .models import Environment, Project, Release
from .params import (
    SORTS_DETAILS,
    parse_bool,
    parse_health_stats_period,
    parse_project_id_or_slug,
    parse_summary_period,
)
from .serializers import ReleaseSerializer

NOT_FOUND = "The requested resource does not exist"


class ReleaseViewSet(OrganizationEndpointMixin, viewsets.GenericViewSet):
    """``/api/0/organizations/{org}/releases/{version}/``."""

    permission_classes = [OrganizationReleasePermission]
    serializer_class = ReleaseSerializer
    lookup_field = "version"
    lookup_value_regex = r"[^/]+"
    # Narrow the prev/next candidates of ``currentProjectMeta``.
    navigation_filter_backends = [
        ReleaseProjectFilter,
        ReleaseEnvironmentFilter,
        ReleaseStatusFilter,
        ReleaseQueryFilter,
    ]
    status_allows_empty = False

    def get_queryset(self) -> QuerySet[Release]:
        return Release.objects.for_org(self.organization).with_serializer_relations()

    def get_selected_projects(self) -> list[Project]:
        return self._selected_projects

    def get_environments(self) -> list[Environment] | None:
        return get_environments(self.request, self.organization)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = request.query_params
        with_health = parse_bool(params, "health")
        with_adoption = parse_bool(params, "adoptionStages")
        summary_period = parse_summary_period(params)
        stats_period = parse_health_stats_period(params, health=with_health)

        release = get_object_or_404(self.get_queryset(), version=kwargs["version"])
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
