"""Release endpoints: thin views over filters, serializers, services and health."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from functools import cached_property
from typing import Any, cast

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import OrganizationReleasePermission, OrganizationRepositoryPermission

from ..access import find_projects
from ..health import reads, sorts
from ..models import (
    SERIALIZER_RELATIONS,
    Commit,
    Deploy,
    Environment,
    Project,
    Release,
    ReleaseProject,
    ReleaseQuerySet,
    Repository,
)
from ..services import (
    deploy_create,
    release_create,
    release_delete,
    release_set_commits_and_refs,
    release_update,
    repository_create,
)
from .base import OrganizationEndpointMixin
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
from .inputs import (
    DeployCreateSerializer,
    ProjectReleaseCreateSerializer,
    ReleaseCreateSerializer,
    ReleaseUpdateSerializer,
    RepositoryCreateSerializer,
)
from .pagination import CursorPagination
from .params import (
    SLUG_RE,
    SORTS_DETAILS,
    is_number,
    parse_bool,
    parse_health_stats_period,
    parse_project_id_or_slug,
    parse_summary_period,
)
from .serializers import (
    ReleaseSerializer,
    serialize_commits,
    serialize_deploy,
    serialize_repository,
)

NOT_FOUND = "The requested resource does not exist"
LIST_SORTS = ("date", "build", "semver", "adoption", *sorts.HEALTH_SORTS)


class ReleaseViewSet(OrganizationEndpointMixin, viewsets.GenericViewSet):
    """``/api/0/organizations/{org}/releases/`` and ``…/releases/{version}/`` with sub-routes."""

    permission_classes = [OrganizationReleasePermission]
    serializer_class = ReleaseSerializer
    pagination_class = CursorPagination
    create_serializer_class: type[ReleaseCreateSerializer] = ReleaseCreateSerializer
    lookup_field = "version"
    lookup_value_regex = r"[^/\x00]+"
    # The list's filters; the details endpoint narrows its prev/next candidates with them too
    # (without the date window, which Sentry does not apply there).
    list_filter_backends = [
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

    @property
    def status_allows_empty(self) -> bool:
        """An empty ``status`` means any status on the list; details refuse it, as in Sentry."""
        return self.action == "list"

    def get_queryset(self) -> QuerySet[Release]:
        return Release.objects.for_org(self.organization).with_serializer_relations()

    def get_selected_projects(self) -> list[Project]:
        return self._selected_projects

    def get_environments(self) -> list[Environment] | None:
        if not hasattr(self, "_environments"):
            self._environments = get_environments(self.request, self.organization)
        return self._environments

    def get_environment_ids(self) -> list[int] | None:
        environments = self.get_environments()
        return [e.pk for e in environments] if environments is not None else None

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = request.query_params
        with_health = parse_bool(params, "health")
        with_adoption = parse_bool(params, "adoptionStages")
        summary_period = parse_summary_period(params)
        stats_period = parse_health_stats_period(params, health=with_health)

        release = self.get_release()
        accessible = self.access.accessible_projects()
        project = self._requested_project(accessible, release)
        meta: dict[str, Any] = {}
        if project is not None:
            if with_health:
                release.narrowed_project_id = project.pk  # type: ignore[attr-defined]
            meta = self._current_project_meta(release, project)

        context = {
            **self.get_serializer_context(),
            "health": reads.HealthOptions(summary_period, stats_period) if with_health else None,
            "adoption_stages": with_adoption,
            "current_project_meta": meta,
        }
        return Response(ReleaseSerializer(release, context=context).data)

    def get_release(self, *, write: bool = False) -> Release:
        """The release of the URL, if the caller may see it (and, for ``write``, change it).

        Seeing takes access to one of its projects; changing takes access to all of them
        (release-api.md §6.4). Either failure is a 404, as for a release that does not exist.
        """
        release = self.get_queryset().filter(version=self.kwargs["version"]).first()
        if release is None:
            raise NotFound(NOT_FOUND)
        accessible = self.access.accessible_projects().values("pk")
        projects = Project.objects.filter(release_projects__release=release)
        if not projects.filter(pk__in=accessible).exists():
            raise NotFound(NOT_FOUND)
        if write and projects.exclude(pk__in=accessible).exists():
            raise NotFound(NOT_FOUND)
        return release

    def page_of(self, queryset: QuerySet[Any]) -> list[Any]:
        return self.paginate_queryset(queryset) or []

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
        if sort in sorts.HEALTH_SORTS and not flatten:
            raise ParseError("sorting by crash statistics requires flattening (flatten=1)")

        self._selected_projects = self._list_projects()
        if not self._selected_projects:
            return Response([])
        releases: QuerySet[Release] = Release.objects.for_org(self.organization)
        for backend in self.list_filter_backends:
            releases = backend().filter_queryset(request, releases, self)

        paginator = self.pagination_class()
        if flatten:
            links = (
                ReleaseProject.objects.filter(
                    release__in=releases, project__in=self._selected_projects
                )
                .select_related(*(f"release__{name}" for name in SERIALIZER_RELATIONS))
                .prefetch_related("release__owner__emails")
            )
            page = []
            ordered = self._ordered(links, sort, "release__", summary_period=summary_period)
            for row in paginator.paginate_queryset(ordered, request):
                row.release.narrowed_project_id = row.project_id
                page.append(row.release)
        else:
            # The filter backends keep the queryset's class.
            rows = cast(ReleaseQuerySet, releases).with_serializer_relations()
            ordered = self._ordered(rows, sort, "", summary_period=summary_period)
            page = paginator.paginate_queryset(ordered, request)

        environment_ids = self.get_environment_ids()
        options = reads.HealthOptions(
            summary_period,
            stats_period,
            stat=health_stat,
            environment_ids=tuple(environment_ids) if environment_ids is not None else None,
        )
        context = {
            **self.get_serializer_context(),
            "health": options if with_health else None,
            "adoption_stages": with_adoption,
            "environments": environment_ids,
        }
        data = ReleaseSerializer(page, many=True, context=context).data
        return paginator.get_paginated_response(data)

    def _list_projects(self) -> builtins.list[Project]:
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
        if not all(is_number(v) or SLUG_RE.match(v) for v in values):
            raise ParseError("Invalid project parameter. Values must be numbers or slugs.")
        projects = find_projects(accessible, values)
        if projects is None:
            raise PermissionDenied()
        return projects

    def _ordered(self, rows: QuerySet, sort: str, prefix: str, *, summary_period: str) -> QuerySet:
        """Order by ``sort``; every ordering ends with a unique tiebreaker for stable pages.

        ``prefix`` is ``"release__"`` for flattened rows (release-project links).
        """
        newest = [F(f"{prefix}date_added").desc(), F(f"{prefix}id").desc()]
        if prefix:
            newest.append(F("project_id").asc())
        environment_ids = self.get_environment_ids()
        if sort == "build":
            rows = rows.filter(**{f"{prefix}build_number__isnull": False})
            return rows.order_by(F(f"{prefix}build_number").desc(), *newest)
        if sort == "semver":
            return rows.order_by(*semver_ordering(prefix), *newest[2:])
        if sort == "adoption":
            adopted = sorts.adoption_sort_value(
                project="project_id" if prefix else None,
                project_ids=None if prefix else [p.pk for p in self._selected_projects],
                environment_ids=environment_ids,
                release="release_id" if prefix else "pk",
            )
            return rows.annotate(adopted_at=adopted).order_by(
                F("adopted_at").desc(nulls_last=True), *newest
            )
        if sort in sorts.HEALTH_SORTS:  # flattened rows only
            return sorts.order_by_health(
                rows,
                sort,
                now=timezone.now(),
                summary_period=summary_period,
                environment_ids=environment_ids,
            )
        return rows.order_by(*newest)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Idempotent upsert: 201 when created or projects were added, else 208 (§5.6)."""
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
        created_status = created or bool(new_projects)
        return self._write_response(
            release, status.HTTP_201_CREATED if created_status else status.HTTP_208_ALREADY_REPORTED
        )

    def projects_to_link(self, data: dict[str, Any]) -> Sequence[Project]:
        return [*data["projects"]]

    def _check_existing_release_projects(self, version: str) -> None:
        """Changing an existing release takes access to all of its projects (§5.6 step 4)."""
        projects = Project.objects.filter(
            release_projects__release__organization=self.organization,
            release_projects__release__version=version,
        )
        accessible = self.access.accessible_projects().values("pk")
        if projects.exclude(pk__in=accessible).exists():
            slugs = ", ".join(projects.order_by("slug").values_list("slug", flat=True))
            raise ValidationError(
                {"projects": [f"You do not have permission to one of the projects: {slugs}"]}
            )

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        release = self.get_release(write=True)
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
        return self._write_response(release, status.HTTP_200_OK)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        release_delete(release=self.get_release(write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _write_response(self, release: Release, code: int) -> Response:
        """The release as written, without event data (§5.6 step 10)."""
        release = self.get_queryset().get(pk=release.pk)
        context = {**self.get_serializer_context(), "with_events": False}
        return Response(ReleaseSerializer(release, context=context).data, status=code)

    @action(detail=True, methods=["get"])
    def commits(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The release's commits, newest first."""
        release = self.get_release()
        queryset = (
            Commit.objects.filter(release_commits__release=release)
            .select_related("repository", "author")
            .order_by("release_commits__order", "pk")
        )
        page = self.page_of(queryset)
        return self.get_paginated_response(serialize_commits(page, request.user))

    @action(detail=True, methods=["get"], url_path="previous-with-commits")
    def previous_with_commits(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The newest release, up to this one's date, of a shared project with commits; or ``{}``.

        As in Sentry the comparison is ``<=``, so a release with commits finds itself.
        """
        release = self.get_release()
        projects = release.projects.filter(pk__in=self.access.accessible_projects().values("pk"))
        previous = (
            self.get_queryset()
            .filter(
                pk__in=ReleaseProject.objects.filter(project__in=projects).values("release_id"),
                last_commit__isnull=False,
            )
            .annotate(effective_date=Coalesce("date_released", "date_added"))
            .filter(effective_date__lte=release.date_released or release.date_added)
            .order_by("-effective_date", "-pk")
            .first()
        )
        if previous is None:
            return Response({})
        context = {**self.get_serializer_context(), "with_events": False}
        return Response(ReleaseSerializer(previous, context=context).data)

    @action(detail=True, methods=["get", "post"])
    def deploys(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """GET: the latest deploy per environment, newest first. POST: record a deploy."""
        release = self.get_release()
        if request.method == "POST":
            return self._create_deploy(release)
        newer = Deploy.objects.filter(release=release, environment=OuterRef("environment")).filter(
            Q(date_finished__gt=OuterRef("date_finished"))
            | Q(date_finished=OuterRef("date_finished"), pk__gt=OuterRef("pk"))
        )
        queryset = (
            Deploy.objects.filter(release=release)
            .exclude(Exists(newer))
            .select_related("environment")
            .order_by("-date_finished", "-pk")
        )
        page = self.page_of(queryset)
        return self.get_paginated_response([serialize_deploy(d) for d in page])

    def _create_deploy(self, release: Release) -> Response:
        serializer = DeployCreateSerializer(
            data=self.request.data, context={"release_projects": list(release.projects.all())}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        deploy = deploy_create(
            release=release,
            environment=data["environment"],
            name=data.get("name") or None,
            url=data.get("url") or None,
            date_started=data.get("dateStarted"),
            date_finished=data.get("dateFinished"),
            projects=data.get("projects"),
        )
        return Response(serialize_deploy(deploy), status=status.HTTP_201_CREATED)

    def _requested_project(self, accessible: QuerySet[Project], release: Release) -> Project | None:
        """``project`` (or its documented alias ``project_id``) by id or slug."""
        params = self.request.query_params
        raw = params.get("project") if "project" in params else params.get("project_id")
        if not raw:
            return None
        found = find_projects(accessible.filter(releases=release), [parse_project_id_or_slug(raw)])
        if not found:
            raise NotFound(NOT_FOUND)
        return found[0]

    def _current_project_meta(self, release: Release, project: Project) -> dict[str, Any]:
        """Session bounds and prev/next/first/last releases of the project (§1.5)."""
        self._selected_projects = [project]
        environment_ids = self.get_environment_ids()
        # Sentry checks the date window here without applying it to the navigation (§1.2).
        ReleaseDateRangeFilter.window(self.request)
        lower, upper = reads.session_bounds(project.pk, release.pk, environment_ids)
        sort = self.request.query_params.get("sort") or "date"
        if sort not in SORTS_DETAILS:
            raise ParseError("invalid sort")

        candidates: QuerySet[Release] = Release.objects.for_org(self.organization)
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
            following, preceding = sorts.health_neighbours(
                candidates,
                release,
                project_id=project.pk,
                sort=sort,
                now=timezone.now(),
                summary_period=parse_summary_period(self.request.query_params),
                environment_ids=environment_ids,
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


class ProjectReleaseViewSet(ReleaseViewSet):
    """The legacy ``/api/0/projects/{org}/{project}/releases/`` routes of sentry-cli 2.x.

    The same endpoints, limited to the releases of one project the caller can access; POST
    links the new release to that project only.
    """

    create_serializer_class = ProjectReleaseCreateSerializer

    @cached_property
    def project(self) -> Project:
        found = find_projects(
            self.access.accessible_projects(), [self.kwargs["project_id_or_slug"]]
        )
        if not found:
            raise NotFound(NOT_FOUND)
        return found[0]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.project  # noqa: B018

    def get_queryset(self) -> QuerySet[Release]:
        linked = ReleaseProject.objects.filter(project=self.project)
        return super().get_queryset().filter(pk__in=linked.values("release_id"))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The project's releases, newest first; ``status`` as on the org list, ``query`` a
        version substring (never parsed, as in Sentry)."""
        releases = ReleaseStatusFilter().filter_queryset(request, self.get_queryset(), self)
        releases = releases.order_by("-date_added", "-id")
        if query := request.query_params.get("query", ""):
            releases = releases.filter(free_text_q(query))
        page = self.page_of(releases)
        serializer = ReleaseSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)

    def projects_to_link(self, data: dict[str, Any]) -> Sequence[Project]:
        return [self.project]


class RepositoryViewSet(OrganizationEndpointMixin, viewsets.GenericViewSet):
    """``/api/0/organizations/{org}/repos/``: list (paginated by name) and create."""

    permission_classes = [OrganizationRepositoryPermission]
    pagination_class = CursorPagination
    statuses: dict[str, list[str]] = {
        "active": [Repository.Status.ACTIVE],
        "deleted": [Repository.Status.PENDING_DELETION, Repository.Status.DELETION_IN_PROGRESS],
    }

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = Repository.objects.filter(organization=self.organization)
        wanted = request.query_params.get("status", "active")
        if wanted:
            if wanted not in self.statuses:
                raise ParseError("invalid value for status")
            queryset = queryset.filter(status__in=self.statuses[wanted])
        if query := request.query_params.get("query"):
            queryset = queryset.filter(name__icontains=query)
        page = self.paginate_queryset(queryset.order_by("name", "pk")) or []
        return self.get_paginated_response([serialize_repository(r) for r in page])

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = RepositoryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        repository = repository_create(organization=self.organization, **serializer.validated_data)
        return Response(serialize_repository(repository), status=status.HTTP_201_CREATED)
