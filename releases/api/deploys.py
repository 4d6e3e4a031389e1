"""A release's deploys: the latest per environment, and recording a new one."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Deploy
from ..services import deploy_create
from .base import ProjectRouteMixin, ReleaseEndpoint
from .inputs import DeployCreateSerializer
from .pagination import CursorPagination
from .serializers import serialize_deploy


class ReleaseDeploysView(ReleaseEndpoint, generics.ListCreateAPIView):
    """``GET, POST …/releases/{version}/deploys/``."""

    pagination_class = CursorPagination

    def get_queryset(self) -> QuerySet[Deploy]:
        """The latest deploy per environment, newest first."""
        release = self.get_release()
        newer = Deploy.objects.filter(release=release, environment=OuterRef("environment")).filter(
            Q(date_finished__gt=OuterRef("date_finished"))
            | Q(date_finished=OuterRef("date_finished"), pk__gt=OuterRef("pk"))
        )
        return (
            Deploy.objects.filter(release=release)
            .exclude(Exists(newer))
            .select_related("environment")
            .order_by("-date_finished", "-pk")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response([serialize_deploy(d) for d in page])

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        release = self.get_release()
        # Only the release's projects the caller may see can be named, or are the default: a
        # hidden one is "Invalid project ids or slugs", like an unknown one (docs/api.md §8.4).
        visible = release.projects.filter(pk__in=self.access.accessible_projects().values("pk"))
        serializer = DeployCreateSerializer(
            data=request.data, context={"release_projects": list(visible.order_by("pk"))}
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
            projects=data.get("projects") or serializer.context["release_projects"],
        )
        return Response(serialize_deploy(deploy), status=status.HTTP_201_CREATED)


class ProjectReleaseDeploysView(ProjectRouteMixin, ReleaseDeploysView):
    """``GET, POST /projects/{org}/{project}/releases/{version}/deploys/``."""
