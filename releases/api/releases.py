"""The release endpoints: list and create, details, update and delete (docs/api.md §1 to §5)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, cast

from django.db.models import Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework import status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from ..access import find_projects
from ..health import reads, sorts
from ..models import SERIALIZER_RELATIONS, Project, Release, ReleaseProject, ReleaseQuerySet
from ..services import release_create, release_delete, release_set_commits_and_refs, release_update
from .base import ProjectRouteMixin, ReleaseEndpoint
from .conditional import CachedAnswers, cached_answer
from .errors import ResourceNotFound
from .filters import (
    ProjectReleaseFilterSet,
    ReleaseFilterBackend,
    ReleaseFilterSet,
    ReleaseNavigationFilterSet,
)
from .inputs import ProjectReleaseCreateSerializer, ReleaseCreateSerializer, ReleaseUpdateSerializer
from .ordering import order_releases
from .pagination import CursorPagination
from .params import DETAILS_SORTS, ReleaseDetailsParams, ReleaseListParams, parse_sort
from .serializers import ProjectMeta, ReleaseEntry, ReleaseOutput, ReleaseSerializer


class ReleaseViewSet(CachedAnswers, ReleaseEndpoint, viewsets.GenericViewSet):
    """``/api/0/organizations/{org}/releases/`` and ``…/releases/{version}/``."""

    serializer_class = ReleaseSerializer
    pagination_class = CursorPagination
    filter_backends = [ReleaseFilterBackend]
    filterset_class = ReleaseFilterSet
    create_serializer_class: type[ReleaseCreateSerializer] = ReleaseCreateSerializer
    lookup_field = "version"

    def get_queryset(self) -> ReleaseQuerySet:
        return self.get_release_queryset()

    def get_object(self) -> Release:
        return self.get_release(write=self.request.method not in SAFE_METHODS)

    def get_filterset(self) -> ReleaseFilterSet:
        """The list's FilterSet, built once per request (see :class:`ReleaseFilterBackend`)."""
        if not hasattr(self, "_filterset"):
            self._filterset = self.filterset_class(
                self.request.query_params, Release.objects.none(), **self.get_filterset_kwargs()
            )
        return self._filterset

    def get_filterset_kwargs(self) -> dict[str, Any]:
        return {"request": self.request, "access": self.access}

    def get_serializer(
        self, *args: Any, output: ReleaseOutput | None = None, **kwargs: Any
    ) -> BaseSerializer:
        """DRF's, with what the answer includes; by default that of a write's answer."""
        context = {**self.get_serializer_context(), "output": output or ReleaseOutput()}
        return super().get_serializer(*args, context=context, **kwargs)

    @cached_property
    def list_params(self) -> ReleaseListParams:
        return ReleaseListParams.parse(self.request.query_params)

    @cached_property
    def details_params(self) -> ReleaseDetailsParams:
        return ReleaseDetailsParams.parse(self.request.query_params)

    # -- list -----------------------------------------------------------------------------

    @cached_answer
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = self.list_params
        releases = self.filter_queryset(self.get_queryset())
        filterset = self.get_filterset()
        projects = filterset.selected_projects
        if params.flatten:
            rows: QuerySet = (
                ReleaseProject.objects.filter(release__in=releases, project__in=projects)
                .select_related(*(f"release__{name}" for name in SERIALIZER_RELATIONS))
                .prefetch_related("release__owner__emails")
            )
        else:
            rows = cast(ReleaseQuerySet, releases).with_serializer_relations()
        ordered = order_releases(
            rows,
            params.sort,
            flattened=params.flatten,
            projects=projects,
            environment_ids=filterset.environment_ids,
            summary_period=params.health.summary_period,
            now=timezone.now(),
        )
        page = self.paginate_queryset(ordered) or []
        entries = (
            [ReleaseEntry(link.release, link.project_id) for link in page]
            if params.flatten
            else [ReleaseEntry(release) for release in page]
        )
        environment_ids = filterset.environment_ids
        envs = tuple(environment_ids) if environment_ids is not None else None
        output = ReleaseOutput(
            health=params.health.health_query(stat=params.health_stat, environment_ids=envs),
            adoption_stages=params.health.adoption_stages,
            environment_ids=envs,
        )
        serializer = self.get_serializer(entries, many=True, output=output)
        return self.get_paginated_response(serializer.data)

    # -- details --------------------------------------------------------------------------

    @cached_answer
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = self.details_params
        release = self.get_object()
        project = self._requested_project(release, params.project)
        output = ReleaseOutput(
            health=params.health.health_query(),
            adoption_stages=params.health.adoption_stages,
            current_project=self._current_project_meta(release, project) if project else None,
        )
        narrowed = project.pk if project is not None and params.health.with_health else None
        serializer = self.get_serializer(ReleaseEntry(release, narrowed), output=output)
        return Response(serializer.data)

    def _requested_project(self, release: Release, value: int | str | None) -> Project | None:
        if value is None:
            return None
        linked = self.access.accessible_projects().filter(releases=release)
        found = find_projects(linked, [value])
        if not found:
            raise ResourceNotFound()
        return found[0]

    def _current_project_meta(self, release: Release, project: Project) -> ProjectMeta:
        """Session bounds and prev/next/first/last releases in the project (docs/api.md §1.5).

        prev/next follow the list's filters and ``sort``, as the list would order them
        (docs/decisions.md); first/last only the project and environments.
        """
        filterset = ReleaseNavigationFilterSet(
            self.request.query_params,
            Release.objects.none(),
            request=self.request,
            access=self.access,
            projects=[project],
        )
        filterset.raise_first_error()
        sort = parse_sort(self.request.query_params, DETAILS_SORTS)
        environment_ids = filterset.environment_ids
        lower, upper = reads.session_bounds(project.pk, release.pk, environment_ids)

        organization_releases = Release.objects.for_org(self.organization)
        candidates = filterset.filter_queryset(organization_releases)
        in_project = filterset.in_selection(organization_releases)
        # Every neighbour is a subquery of one statement (ordered, LIMIT 1 each).
        neighbours = {
            "first": in_project.order_by("date_added", "pk"),
            "last": in_project.order_by("-date_added", "-pk"),
        }
        following = preceding = None
        if sort == "date":
            newer = Q(date_added__gt=release.date_added) | Q(
                date_added=release.date_added, pk__gt=release.pk
            )
            older = Q(date_added__lt=release.date_added) | Q(
                date_added=release.date_added, pk__lt=release.pk
            )
            neighbours["following"] = candidates.filter(newer).order_by("date_added", "pk")
            neighbours["preceding"] = candidates.filter(older).order_by("-date_added", "-pk")
        else:
            following, preceding = sorts.health_neighbours(
                candidates,
                release,
                project_id=project.pk,
                sort=sort,
                now=timezone.now(),
                summary_period=self.details_params.health.summary_period,
                environment_ids=environment_ids,
            )
        found = (
            Release.objects.filter(pk=release.pk)
            .annotate(
                **{
                    name: Subquery(queryset.values("version")[:1])
                    for name, queryset in neighbours.items()
                }
            )
            .values(*neighbours)
            .get()
        )
        return ProjectMeta(
            next_version=found.get("following", following),
            prev_version=found.get("preceding", preceding),
            first_version=found["first"],
            last_version=found["last"],
            sessions_lower_bound=lower,
            sessions_upper_bound=upper,
        )

    # -- writes ---------------------------------------------------------------------------

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Idempotent upsert (docs/api.md §5.6): 201 when created or projects were added, else
        208."""
        serializer = self.create_serializer_class(
            data=request.data, context={"access": self.access}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self._check_existing_release_projects(data["version"])
        release, created, new_projects = release_create(
            organization=self.organization,
            version=data["version"],
            projects=self.projects_to_link(data),
            user_agent=request.headers.get("User-Agent"),
            defaults={
                "ref": data.get("ref") or None,
                "url": data.get("url") or None,
                "date_released": data.get("dateReleased"),
                "owner": data.get("owner"),
            },
            status=data.get("status"),
        )
        release_set_commits_and_refs(release=release, **serializer.commit_arguments())
        changed = created or bool(new_projects)
        return self._written(
            release, status.HTTP_201_CREATED if changed else status.HTTP_208_ALREADY_REPORTED
        )

    def projects_to_link(self, data: dict[str, Any]) -> Sequence[Project]:
        return [*data["projects"]]

    def _check_existing_release_projects(self, version: str) -> None:
        """Changing an existing release takes access to all of its projects (docs/api.md
        §5.6 step 4)."""
        projects = Project.objects.filter(
            release_projects__release__organization=self.organization,
            release_projects__release__version=version,
        )
        accessible = self.access.accessible_projects().values("pk")
        if projects.exclude(pk__in=accessible).exists():
            # Sentry lists every project's slug here; we name none, so that nothing hidden
            # leaks (docs/api.md §6.5).
            raise ValidationError(
                {"projects": ["You do not have permission to one of the projects of this release"]}
            )

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        release = self.get_object()
        serializer = ReleaseUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        release_update(
            release=release,
            ref=data.get("ref"),
            url=data.get("url"),
            date_released=data.get("dateReleased"),
            status=data.get("status"),
        )
        release_set_commits_and_refs(release=release, **serializer.commit_arguments())
        return self._written(release, status.HTTP_200_OK)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        release_delete(release=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _written(self, release: Release, code: int) -> Response:
        """The release as written, without event data (docs/api.md §5.6 step 10)."""
        release = self.get_queryset().with_serializer_relations().get(pk=release.pk)
        serializer = self.get_serializer(ReleaseEntry(release), output=WRITTEN)
        return Response(serializer.data, status=code)


#: Write answers carry no event data (docs/api.md §5.6 step 10).
WRITTEN = ReleaseOutput(with_events=False)


class ProjectReleaseViewSet(ProjectRouteMixin, ReleaseViewSet):
    """``/api/0/projects/{org}/{project}/releases/``: POST links the new release to that
    project only; the list is the project's releases, newest released first."""

    create_serializer_class = ProjectReleaseCreateSerializer
    filterset_class = ProjectReleaseFilterSet  # type: ignore[assignment]

    @cached_answer
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        releases = cast(ReleaseQuerySet, self.filter_queryset(self.get_queryset()))
        # Newest first by release date, else creation date, as in Sentry.
        ordered = (
            releases.with_serializer_relations()
            .annotate(sort_date=Coalesce("date_released", "date_added"))
            .order_by("-sort_date", "-id")
        )
        entries = [ReleaseEntry(release) for release in self.paginate_queryset(ordered) or []]
        return self.get_paginated_response(self.get_serializer(entries, many=True).data)

    def get_filterset_kwargs(self) -> dict[str, Any]:
        return {**super().get_filterset_kwargs(), "project": self.project}

    def projects_to_link(self, data: dict[str, Any]) -> Sequence[Project]:
        return [self.project]
