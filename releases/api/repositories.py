"""``/api/0/organizations/{org}/repos/``: the organization's repositories."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import generics, status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import OrganizationRepositoryPermission

from ..models import Repository
from ..services import repository_create
from .base import OrganizationEndpoint
from .inputs import RepositoryCreateSerializer
from .pagination import CursorPagination
from .serializers import serialize_repository


class RepositoriesView(OrganizationEndpoint, generics.ListCreateAPIView):
    """List (by name; ``status``, ``integration_id`` and a ``query`` name substring) and
    create."""

    permission_classes = [OrganizationRepositoryPermission]
    pagination_class = CursorPagination
    statuses: dict[str, list[str]] = {
        "active": [Repository.Status.ACTIVE],
        "deleted": [Repository.Status.PENDING_DELETION, Repository.Status.DELETION_IN_PROGRESS],
    }

    def get_queryset(self) -> QuerySet[Repository]:
        params = self.request.query_params
        queryset = Repository.objects.filter(organization=self.organization)
        wanted = params.get("status", "active")
        if wanted:
            if wanted not in self.statuses:
                raise ParseError("invalid value for status")
            queryset = queryset.filter(status__in=self.statuses[wanted])
        if query := params.get("query"):
            queryset = queryset.filter(name__icontains=query)
        if integration_id := params.get("integration_id"):
            queryset = queryset.filter(integration_id=integration_id)
        return queryset.order_by("name", "pk")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response([serialize_repository(r) for r in page])

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = RepositoryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        repository = repository_create(organization=self.organization, **serializer.validated_data)
        return Response(serialize_repository(repository), status=status.HTTP_201_CREATED)
