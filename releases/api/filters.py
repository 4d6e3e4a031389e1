"""The release list's filters as a django-filter FilterSet: project, environment, status, the
date window and ``query`` (docs/api.md §5.2, docs/search.md).

Each parameter is validated by its form field, in declaration order, which is Sentry's order
of checks; :class:`ReleaseFilterBackend` turns the first error into Sentry's answer (400, or
403/404 where Sentry gives them) with its exact ``detail``. The details endpoint's prev/next
navigation uses the same filters through :class:`ReleaseNavigationFilterSet`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from .. import querysyntax
from ..access import Access, find_projects, is_number
from ..models import (
    OPEN_STATUS,
    Environment,
    Project,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    ReleaseStatus,
)
from .errors import NOT_FOUND
from .params import SLUG_RE
from .search import UNITS, ReleaseSearch, free_text_q, parse_datetime_param

# Error codes of the fields' ValidationErrors, and the answers they become.
FORBIDDEN, MISSING = "forbidden", "not_found"
_ANSWERS: dict[str, type[exceptions.APIException]] = {
    FORBIDDEN: exceptions.PermissionDenied,
    MISSING: exceptions.NotFound,
}


class _ParamsInput(forms.Widget):
    """The values of several query parameters that make one value together (None if absent)."""

    def __init__(self, *names: str) -> None:
        super().__init__()
        self.names = names

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return {key: data.get(key) for key in self.names}


class _ListInput(_ParamsInput):
    """Every value of the given repeatable query parameters (default: the field's), in order."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return [value for key in self.names or (name,) for value in data.getlist(key)]


class _Field(forms.Field):
    """A form field whose ``clean`` is the whole parsing of its parameter."""

    def clean(self, value: Any) -> Any:
        return self.parse(value)

    def parse(self, value: Any) -> Any:
        raise NotImplementedError


class ProjectsField(_Field):
    """``project`` and ``projectSlug`` (ids or slugs, repeatable; ``-1``/``$all``: every
    accessible project); without them, the caller's member projects. A project the caller
    cannot access is a 403. ``projects`` fixes the selection instead (the navigation)."""

    widget = _ListInput("project", "projectSlug")

    def __init__(
        self, *, access: Access, projects: Sequence[Project] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.access, self.projects = access, projects

    def parse(self, value: list[str]) -> list[Project]:
        if self.projects is not None:
            return list(self.projects)
        values = [v for v in value if v]
        if not values:
            return list(self.access.member_projects().order_by("pk"))
        accessible = self.access.accessible_projects()
        if any(v in ("-1", "$all") for v in values):
            return list(accessible.order_by("pk"))
        if not all(is_number(v) or SLUG_RE.match(v) for v in values):
            raise forms.ValidationError(
                "Invalid project parameter. Values must be numbers or slugs."
            )
        projects = find_projects(accessible, values)
        if projects is None:
            raise forms.ValidationError("", code=FORBIDDEN)
        return projects


class EnvironmentsField(_Field):
    """``environment`` (repeatable) as rows; None when absent; 404 when one is unknown."""

    widget = _ListInput()

    def __init__(self, *, access: Access, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.organization = access.organization

    def parse(self, value: list[str]) -> list[Environment] | None:
        if not value:
            return None
        found = list(Environment.objects.filter(organization=self.organization, name__in=value))
        if len({e.name for e in found}) != len(set(value)):
            raise forms.ValidationError(NOT_FOUND, code=MISSING)
        return found


class StatusField(_Field):
    """``status``: ``open`` (the default; NULL counts as open) or ``archived``; an empty value
    means both where ``allow_empty`` (the list), and is refused elsewhere (details)."""

    widget = _ParamsInput("status")

    def __init__(self, *, allow_empty: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_empty = allow_empty

    def parse(self, value: Mapping[str, str | None]) -> Q:
        status = value["status"]
        if status is None or status == "open":
            return OPEN_STATUS
        if status == "archived":
            return Q(status=ReleaseStatus.ARCHIVED)
        if status == "" and self.allow_empty:
            return Q()
        raise forms.ValidationError("invalid value for status")


def parse_stats_period(value: str) -> timedelta:
    """``statsPeriod`` such as ``14d``, ``6h`` or ``90`` (seconds)."""
    number, unit = (value[:-1], value[-1]) if value[-1:] in UNITS else (value, "s")
    if not is_number(number):
        raise ValueError(value)
    return timedelta(**{UNITS[unit]: int(number)})


class DateWindowField(_Field):
    """``statsPeriod`` or ``start``/``end``: a window of release creation dates, or None."""

    widget = _ParamsInput("statsPeriod", "start", "end")

    def parse(self, value: Mapping[str, str | None]) -> tuple[datetime, datetime] | None:
        period, start, end = value["statsPeriod"], value["start"], value["end"]
        try:
            if period:
                now = timezone.now()
                return now - parse_stats_period(period), now
            if start is None and end is None:
                return None
            if not (start and end):
                raise ValueError("start and end are both required")
            window = (parse_datetime_param(start), parse_datetime_param(end))
        except (ValueError, OverflowError) as exc:
            raise forms.ValidationError(f"Invalid date range: {exc}") from None
        if window[0] > window[1]:
            raise forms.ValidationError("Invalid date range: start must be before end")
        return window


class _QueryTextField(_Field):
    """``query`` as given."""

    widget = _ParamsInput("query")

    def parse(self, value: Mapping[str, str | None]) -> Mapping[str, str | None]:
        return value


class SearchField(_Field):
    """``query``: the parsed search tree (None when empty); syntax and key errors are 400s."""

    widget = _ParamsInput("query")

    def parse(self, value: Mapping[str, str | None]) -> querysyntax.Node | None:
        try:
            return ReleaseSearch.parse(value["query"] or "")
        except querysyntax.QuerySyntaxError as exc:
            raise forms.ValidationError(str(exc)) from None


class _Filter(django_filters.Filter):
    """A filter whose field is one of the fields above, given the FilterSet's context."""

    def __init__(self, field_class: type[_Field], **kwargs: Any) -> None:
        super().__init__(label="", **kwargs)
        self.field_class = field_class

    @property
    def parent_data(self) -> dict[str, Any]:
        return self.parent.form.cleaned_data


class ProjectFilter(_Filter):
    def filter(self, qs: QuerySet, value: list[Project]) -> QuerySet:
        links = ReleaseProject.objects.filter(project__in=value)
        return qs.filter(pk__in=links.values("release_id"))


class EnvironmentFilter(_Filter):
    """Releases seen in one of the environments, in the selected projects."""

    def filter(self, qs: QuerySet, value: list[Environment] | None) -> QuerySet:
        if value is None:
            return qs
        rows = ReleaseProjectEnvironment.objects.filter(
            environment__in=value, project__in=self.parent_data["project"]
        )
        return qs.filter(pk__in=rows.values("release_id"))


class StatusFilter(_Filter):
    def filter(self, qs: QuerySet, value: Q) -> QuerySet:
        return qs.filter(value)


class DateWindowFilter(_Filter):
    """Releases created within the window; ``apply=False`` only checks it (the navigation,
    where Sentry validates the window without applying it)."""

    def __init__(self, field_class: type[_Field], *, apply: bool = True, **kwargs: Any) -> None:
        super().__init__(field_class, **kwargs)
        self.apply = apply

    def filter(self, qs: QuerySet, value: tuple[datetime, datetime] | None) -> QuerySet:
        if value is None or not self.apply:
            return qs
        return qs.filter(date_added__range=value)


class SearchFilter(_Filter):
    def filter(self, qs: QuerySet, value: querysyntax.Node | None) -> QuerySet:
        if value is None:
            return qs
        search = ReleaseSearch(self.parent_data["project"], self.parent_data["environment"])
        try:
            return qs.filter(search.to_q(value))
        except querysyntax.QuerySyntaxError as exc:
            raise exceptions.ParseError(str(exc)) from None


class SentryFilterSet(django_filters.FilterSet):
    """A FilterSet of the caller's ``access`` whose errors are Sentry's answers."""

    def __init__(
        self, data: Any, queryset: QuerySet[Release], *, request: Request | None, access: Access
    ) -> None:
        super().__init__(data, queryset, request=request)
        self.access = access

    def raise_first_error(self) -> None:
        """Raise Sentry's answer to the first invalid parameter, in declaration order."""
        errors = self.form.errors.as_data()
        if errors:
            error = next(iter(errors.values()))[0]
            answer = _ANSWERS.get(error.code or "", exceptions.ParseError)
            raise answer(error.message or None)

    def selects_nothing(self) -> bool:
        """Whether the answer is empty whatever the other parameters say."""
        return False


class ReleaseFilterSet(SentryFilterSet):
    """The release list's filters. ``projects`` fixes the project selection (the details
    endpoint's navigation) instead of reading ``project``."""

    project = ProjectFilter(ProjectsField)
    environment = EnvironmentFilter(EnvironmentsField)
    status = StatusFilter(StatusField, allow_empty=True)
    window = DateWindowFilter(DateWindowField)
    query = SearchFilter(SearchField)

    class Meta:
        model = Release
        fields: list[str] = []

    def __init__(
        self,
        data: Any,
        queryset: QuerySet[Release],
        *,
        request: Request | None,
        access: Access,
        projects: Sequence[Project] | None = None,
    ) -> None:
        super().__init__(data, queryset, request=request, access=access)
        self.filters["project"].extra.update(access=access, projects=projects)
        self.filters["environment"].extra["access"] = access

    def selects_nothing(self) -> bool:
        """No project selected means no release."""
        return "project" not in self.form.errors and not self.form.cleaned_data["project"]

    @property
    def selected_projects(self) -> list[Project]:
        return list(self.form.cleaned_data.get("project") or [])

    @property
    def environments(self) -> list[Environment] | None:
        return self.form.cleaned_data.get("environment")

    @property
    def environment_ids(self) -> list[int] | None:
        environments = self.environments
        return [e.pk for e in environments] if environments is not None else None

    def in_selection(self, queryset: QuerySet[Release]) -> QuerySet[Release]:
        """Only the project and environment filters (the navigation's first and last)."""
        for name in ("project", "environment"):
            queryset = self.filters[name].filter(queryset, self.form.cleaned_data[name])
        return queryset


class ReleaseNavigationFilterSet(ReleaseFilterSet):
    """The details endpoint's prev/next candidates: the list's filters on one project, with
    the date window checked but not applied and an empty ``status`` refused, as in Sentry."""

    status = StatusFilter(StatusField, allow_empty=False)
    window = DateWindowFilter(DateWindowField, apply=False)


class VersionSubstringFilter(_Filter):
    def filter(self, qs: QuerySet, value: Mapping[str, str | None]) -> QuerySet:
        return qs.filter(free_text_q(value["query"])) if value["query"] else qs


class SeenInFilter(_Filter):
    """Releases seen in one of the named environments of the route's project; unknown names
    match nothing (as in Sentry)."""

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        names = [name for name in value if name]
        if not names:
            return qs
        rows = ReleaseProjectEnvironment.objects.filter(environment__name__in=names)
        return qs.filter(pk__in=rows.filter(project=self.parent.project).values("release_id"))


class _NamesField(_Field):
    widget = _ListInput()

    def parse(self, value: list[str]) -> list[str]:
        return value


class ProjectReleaseFilterSet(SentryFilterSet):
    """The project route's list: ``environment`` names, ``status`` as on the organization's
    list, and ``query`` a version substring, never parsed (as in Sentry)."""

    environment = SeenInFilter(_NamesField)
    status = StatusFilter(StatusField, allow_empty=True)
    query = VersionSubstringFilter(_QueryTextField)

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    class Meta:
        model = Release
        fields: list[str] = []


class FilteredView(Protocol):
    """A view that builds its FilterSet once per request."""

    def get_filterset(self) -> SentryFilterSet: ...


class ReleaseFilterBackend(django_filters.rest_framework.DjangoFilterBackend):
    """django-filter's backend on the view's own FilterSet, with Sentry's error answers.

    The view builds its FilterSet once per request (``get_filterset``) so that it reads, for
    ordering and health, the same project and environment selection as the filters apply.
    """

    def get_filterset(self, request: Request, queryset: QuerySet, view: APIView) -> Any:
        return cast(FilteredView, view).get_filterset()

    def filter_queryset(self, request: Request, queryset: QuerySet, view: APIView) -> QuerySet:
        filterset: SentryFilterSet = self.get_filterset(request, queryset, view)
        if filterset.selects_nothing():
            return queryset.none()
        filterset.raise_first_error()
        return filterset.filter_queryset(queryset)
