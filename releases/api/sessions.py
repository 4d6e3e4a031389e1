"""``GET /api/0/organizations/{org}/sessions/``: Sentry's release-health session statistics.

Parameters, rules and error strings follow Sentry's sessions endpoint (``sessions_v2``) for
our hourly rollups; the numbers come from :mod:`releases.health.series` (docs/sessions.md).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import OrganizationPermission

from .. import querysyntax as qs
from ..access import find_projects, is_number
from ..health import series
from ..models import Environment
from .base import OrganizationEndpoint
from .search import fold
from .serializers import iso

ONE_HOUR = 3600
ONE_DAY = 86400
MAX_POINTS = 1000  # Sentry's limit on buckets per query
DEFAULT_PERIOD = timedelta(days=14)
MAX_GROUPS = 100
_PERIOD_RE = re.compile(r"^([0-9]{1,12})([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": ONE_HOUR, "d": ONE_DAY, "w": 7 * ONE_DAY}
_SLUG_RE = re.compile(r"^[a-z0-9_-]+$", re.IGNORECASE)
# Fields Sentry has that we cannot compute from what we store.
UNSUPPORTED_FIELDS = ("anr_rate()", "foreground_anr_rate()")


def parse_period(name: str, value: str) -> int:
    """Seconds of a Sentry period (``90``, ``30m``, ``24h``, ``14d``, ``2w``)."""
    match = _PERIOD_RE.match(value)
    if not match or int(match[1]) == 0:
        raise ParseError(f"Invalid {name}: '{value}'")
    return int(match[1]) * _UNITS[match[2]]


def parse_moment(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError(f"{name} is not a valid ISO 8601 date: '{value}'") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def constrained_window(params: Any, now: datetime) -> tuple[datetime, datetime, int]:
    """``(start, end, interval)``: the requested window widened to whole intervals.

    Sentry's rules for an hourly store: the interval (default ``1h``) is a multiple of one
    hour, at most a day, and divides a day; buckets are aligned to the interval in UTC and
    every bucket that overlaps the window is included; at most 1000 buckets.
    """
    interval = parse_period("interval", params.get("interval") or "1h")
    if interval % ONE_HOUR:
        raise ParseError("The interval has to be a multiple of the minimum interval of one hour.")
    if interval > ONE_DAY:
        raise ParseError("The interval has to be less than one day.")
    if ONE_DAY % interval:
        raise ParseError("The interval should divide one day without a remainder.")

    period, start_raw, end_raw = (params.get(k) for k in ("statsPeriod", "start", "end"))
    if period:
        end = now
        start = now - timedelta(seconds=parse_period("statsPeriod", period))
    elif start_raw or end_raw:
        if not (start_raw and end_raw):
            raise ParseError("start and end are both required")
        start, end = parse_moment("start", start_raw), parse_moment("end", end_raw)
        if start >= end:
            raise ParseError("start must be before end")
    else:
        end, start = now, now - DEFAULT_PERIOD
    first = int(start.timestamp()) // interval * interval
    last = math.ceil(end.timestamp() / interval) * interval
    if (last - first) / interval > MAX_POINTS:
        raise ParseError(
            "Your interval and date range would create too many results. "
            "Use a larger interval, or a smaller date range."
        )
    return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC), interval


class SessionsQueryFilter:
    """``query``: the release search grammar with the keys ``release`` and ``environment``
    (wildcards, lists, negation, AND/OR), folded into a ``Q`` over the rollups."""

    KEYS = {"release": "release__version", "environment": "environment__name"}

    @classmethod
    def check_key(cls, key: str) -> None:
        if key not in cls.KEYS:
            raise qs.QuerySyntaxError(f"Invalid key for this search: {key}")

    @classmethod
    def to_q(cls, text: str) -> Q:
        try:
            tree = qs.parse(text, check_key=cls.check_key)
            return Q() if tree is None else fold(tree, cls._leaf_q)
        except qs.QuerySyntaxError as exc:
            raise ParseError(str(exc)) from None

    @classmethod
    def _leaf_q(cls, node: qs.Term | qs.FreeText) -> Q:
        if isinstance(node, qs.FreeText):
            raise qs.QuerySyntaxError(
                f"Free text is not supported in this search: {node.text!r}. "
                "Use release: or environment:."
            )
        if node.op not in ("=", "!=", "IN"):
            raise qs.QuerySyntaxError(f"Invalid operator '{node.op}' for {node.key}")
        column = cls.KEYS[node.key]
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        q = Q()
        for value in values:
            if qs.has_wildcard(value):
                q |= Q(**{f"{column}__regex": qs.wildcard_to_regex(value)})
            else:
                q |= Q(**{column: qs.unescape(value)})
        return ~q if node.negated or node.op == "!=" else q


class OrganizationSessionsEndpoint(OrganizationEndpoint):
    """Session statistics of the caller's projects: totals and series per group."""

    permission_classes = [OrganizationPermission]

    def get(self, request: Request, organization_id_or_slug: str) -> Response:
        params = request.query_params
        fields = self._fields(params.getlist("field"))
        group_by = self._group_by(params.getlist("groupBy"), fields)
        order_by = params.get("orderBy") or None
        if order_by is not None:
            if order_by.lstrip("-") not in fields:
                raise ParseError('"orderBy" must be one of the provided "fields"')
            if series.STATUS in group_by:
                raise ParseError('Cannot use "orderBy" when grouping by "session.status"')
        limit = self._per_page(params.get("per_page"))
        start, end, interval = constrained_window(params, timezone.now())
        text = params.get("query", "")
        where = SessionsQueryFilter.to_q(text)
        environments = [e for e in params.getlist("environment") if e]
        if environments:
            where &= Q(
                environment_id__in=Environment.objects.filter(
                    organization=self.organization, name__in=environments
                ).values("pk")
            )
        project_ids = self._project_ids(params.getlist("project"))

        groups = series.session_groups(
            series.SeriesQuery(
                project_ids=tuple(project_ids),
                start=start,
                end=end,
                interval=interval,
                fields=tuple(fields),
                group_by=tuple(group_by),
                where=where,
            )
        )
        if order_by is not None:
            name = order_by.lstrip("-")
            descending = order_by.startswith("-")
            present = [g for g in groups if g["totals"][name] is not None]
            missing = [g for g in groups if g["totals"][name] is None]
            present.sort(key=lambda g: g["totals"][name], reverse=descending)
            groups = present + missing
        count = (end - start) // timedelta(seconds=interval)
        return Response(
            {
                "start": iso(start),
                "end": iso(end),
                "intervals": [iso(start + timedelta(seconds=interval * i)) for i in range(count)],
                "groups": groups[:limit],
                "query": text,
            }
        )

    @staticmethod
    def _fields(values: list[str]) -> list[str]:
        fields = list(dict.fromkeys(v.strip() for v in values if v.strip()))
        if not fields:
            raise ParseError('Request is missing a "field"')
        for name in fields:
            if name in UNSUPPORTED_FIELDS:
                raise ParseError(
                    f'Unsupported field: "{name}". ANR rates need ANR data, which this '
                    "server does not store."
                )
            if name not in series.FIELDS:
                raise ParseError(f'Invalid field: "{name}"')
        return fields

    @staticmethod
    def _group_by(values: list[str], fields: list[str]) -> list[str]:
        group_by = list(dict.fromkeys(v for v in values if v))
        for name in group_by:
            if name not in (*series.DIMENSIONS, series.STATUS):
                raise ParseError(f'Invalid groupBy: "{name}"')
        if series.STATUS in group_by:
            for name in fields:
                if name != "sum(session)":
                    raise ParseError(f"Cannot group field {name} by session.status")
        return group_by

    @staticmethod
    def _per_page(raw: str | None) -> int:
        if raw is None or raw == "":
            return MAX_GROUPS
        if not is_number(raw) or not 1 <= int(raw) <= MAX_GROUPS:
            raise ParseError(f"Invalid per_page: expected a number from 1 to {MAX_GROUPS}.")
        return int(raw)

    def _project_ids(self, values: list[str]) -> list[int]:
        """``project`` ids or slugs; none or ``-1``: every project the caller can access."""
        accessible = self.access.accessible_projects()
        values = [v for v in values if v]
        if not values or "-1" in values:
            return list(accessible.values_list("pk", flat=True))
        if not all(is_number(v) or _SLUG_RE.match(v) for v in values):
            raise ParseError("Invalid project parameter. Values must be numbers or slugs.")
        found = find_projects(accessible, values)
        if found is None:
            raise PermissionDenied("You do not have access to one of the requested projects.")
        return [p.pk for p in found]
