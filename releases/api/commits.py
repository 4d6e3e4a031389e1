"""A release's commits, and the previous release with commits (``set-commits --local``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Commit, ReleaseProject
from .base import ProjectRouteMixin, ReleaseEndpoint
from .pagination import CursorPagination
from .releases import WRITTEN
from .serializers import ReleaseEntry, ReleaseSerializer, serialize_commits


class ReleaseCommitsView(ReleaseEndpoint, generics.ListAPIView):
    """``GET …/releases/{version}/commits/``: the release's commits, newest first."""

    pagination_class = CursorPagination

    def get_queryset(self) -> QuerySet[Commit]:
        return (
            Commit.objects.filter(release_commits__release=self.get_release())
            .select_related("repository", "author")
            .order_by("release_commits__order", "pk")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response(
            serialize_commits(page, request.user, self.access.accessible_projects())
        )


class PreviousReleaseWithCommitsView(ReleaseEndpoint, generics.GenericAPIView):
    """``GET …/releases/{version}/previous-with-commits/``: the newest release, up to this
    one's date, of a shared project with commits; or ``{}``.

    As in Sentry the comparison is ``<=``, so a release with commits finds itself.
    """

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        release = self.get_release()
        projects = release.projects.filter(pk__in=self.access.accessible_projects().values("pk"))
        previous = (
            self.get_release_queryset()
            .with_serializer_relations()
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
        context = {**self.get_serializer_context(), "output": WRITTEN}
        return Response(ReleaseSerializer(ReleaseEntry(previous), context=context).data)


class ProjectReleaseCommitsView(ProjectRouteMixin, ReleaseCommitsView):
    """``GET /projects/{org}/{project}/releases/{version}/commits/``."""


class ProjectPreviousReleaseWithCommitsView(ProjectRouteMixin, PreviousReleaseWithCommitsView):
    """``GET /projects/{org}/{project}/releases/{version}/previous-with-commits/``."""
