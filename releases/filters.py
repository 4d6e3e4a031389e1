"""Filter backends for releases: project, environment, status and the ``query`` syntax.

Views that use them provide ``organization``, ``access`` and ``get_selected_projects()``.
The same backends narrow the release list and the details endpoint's prev/next navigation.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request

from .models import Environment, Release, ReleaseProjectEnvironment, ReleaseStatus

# ``1.0 (1234)`` also finds ``…1.0+1234``: the parenthesised suffix is a build code.
_SUFFIX_FORM = re.compile(r"^(?P<text>.+?)\s+\((?P<build>[^()]+)\)$")


def free_text_q(text: str) -> Q:
    """Case-insensitive substring of the version, plus the ``X (Y)`` → ``X+Y`` rule."""
    lookup = Q(version__icontains=text)
    match = _SUFFIX_FORM.match(text.strip())
    if match:
        lookup |= Q(version__icontains=f"{match['text']}+{match['build']}")
    return lookup


def get_environments(request: Request, organization: Any) -> list[Environment] | None:
    """The ``environment`` parameters as rows; None when absent; 404 when one is unknown."""
    names = request.query_params.getlist("environment")
    if not names:
        return None
    environments = list(Environment.objects.filter(organization=organization, name__in=names))
    if len({e.name for e in environments}) != len(set(names)):
        raise NotFound("The requested resource does not exist")
    return environments


class ReleaseProjectFilter(BaseFilterBackend):
    """Releases linked to at least one of the view's selected projects."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        projects = view.get_selected_projects()
        return queryset.filter(
            pk__in=Release.projects.through.objects.filter(project__in=projects).values(
                "release_id"
            )
        )


class ReleaseEnvironmentFilter(BaseFilterBackend):
    """Releases seen in one of the ``environment`` parameters, in the selected projects."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        environments = view.get_environments()
        if environments is None:
            return queryset
        rows = ReleaseProjectEnvironment.objects.filter(
            environment__in=environments, project__in=view.get_selected_projects()
        )
        return queryset.filter(pk__in=rows.values("release_id"))


class ReleaseStatusFilter(BaseFilterBackend):
    """``status``: ``open`` (the default; NULL counts as open) or ``archived``.

    An empty value means both on the list; views set ``status_allows_empty = False`` to
    refuse it (the details endpoint does, as in Sentry).
    """

    query_param = "status"

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        value = request.query_params.get(self.query_param, "open")
        if value == "open":
            return queryset.filter(Q(status=ReleaseStatus.OPEN) | Q(status__isnull=True))
        if value == "archived":
            return queryset.filter(status=ReleaseStatus.ARCHIVED)
        if value == "" and getattr(view, "status_allows_empty", True):
            return queryset
        raise ParseError("invalid value for status")


class ReleaseQueryFilter(BaseFilterBackend):
    """``query``: free text matched against the version."""

    query_param = "query"

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        text = request.query_params.get(self.query_param, "").strip()
        if not text:
            return queryset
        return queryset.filter(free_text_q(text))
