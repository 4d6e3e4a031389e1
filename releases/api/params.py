"""Query parameters of the release endpoints, parsed once per request into typed objects.

Each endpoint parses its parameters up front, in Sentry's order of checks (docs/api.md §1.2
and §5.2), and hands the result to filters, health reads and serializers; nothing downstream
reads ``request.query_params`` again. The filters' own parameters (``project``,
``environment``, ``status``, the date window and ``query``) are parsed by the FilterSet
(``filters.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rest_framework.exceptions import ParseError

from ..access import is_number
from ..health.periods import STATS_PERIODS
from ..health.reads import HealthQuery
from ..health.sorts import HEALTH_SORTS

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Sentry's slug rule: letters, digits, underscores and hyphens, not only digits.
SLUG_RE = re.compile(r"^(?![0-9]+$)[a-zA-Z0-9_-]+$")

#: ``sort`` of the details endpoint's navigation; the list adds the sorts of its own.
DETAILS_SORTS = ("date", "sessions", "users", "crash_free_sessions", "crash_free_users")
LIST_SORTS = ("date", "build", "semver", "adoption", *HEALTH_SORTS)
HEALTH_STATS = ("sessions", "users")


def parse_bool(params: Mapping[str, str], name: str) -> bool:
    """A boolean parameter (docs/decisions.md): 1/true/yes/on or 0/false/no/off/empty."""
    value = params.get(name)
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ParseError(
        f"Invalid value for {name}: {value!r}. Use 1, true, yes or on; 0, false, no or off."
    )


def _period(params: Mapping[str, str], name: str, default: str) -> str:
    value = params.get(name) or default
    if value not in STATS_PERIODS:
        choices = ", ".join(f"'{key}'" for key in STATS_PERIODS)
        raise ParseError(f"Invalid {name}. Valid choices are {choices}")
    return str(value)


def parse_sort(params: Mapping[str, str], allowed: tuple[str, ...]) -> str:
    sort = params.get("sort") or "date"
    if sort not in allowed:
        raise ParseError("invalid sort")
    return str(sort)


def parse_project_id_or_slug(value: str) -> int | str:
    """A single project given by numeric id or slug; sentinels are refused (Sentry PR #117493)."""
    value = value.strip()
    if is_number(value):
        return int(value)
    if value in ("-1", "$all") or not SLUG_RE.match(value):
        raise ParseError("Invalid project")
    return value


@dataclass(frozen=True)
class HealthParams:
    """``health``, ``adoptionStages`` and the two stats periods, common to details and list."""

    with_health: bool
    adoption_stages: bool
    summary_period: str
    #: Checked even without ``health``; ``24h`` by default with it, None without it.
    stats_period: str | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> HealthParams:
        with_health = parse_bool(params, "health")
        adoption_stages = parse_bool(params, "adoptionStages")
        summary_period = _period(params, "summaryStatsPeriod", "14d")
        stats_period = _period(params, "healthStatsPeriod", "24h")
        if not with_health and not params.get("healthStatsPeriod"):
            return cls(False, adoption_stages, summary_period, None)
        return cls(with_health, adoption_stages, summary_period, stats_period)

    def health_query(
        self, *, stat: str = "sessions", environment_ids: tuple[int, ...] | None = None
    ) -> HealthQuery | None:
        """What to read of release health; None when ``health`` is off."""
        if not self.with_health:
            return None
        return HealthQuery(self.summary_period, self.stats_period, stat, environment_ids)


@dataclass(frozen=True)
class ReleaseDetailsParams:
    """``GET …/releases/{version}/`` (docs/api.md §1.2).

    ``project`` (or its alias ``project_id``) asks for ``currentProjectMeta``; the
    navigation's own parameters are read only then, as in Sentry.
    """

    health: HealthParams
    project: int | str | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ReleaseDetailsParams:
        health = HealthParams.parse(params)
        raw = params.get("project") if "project" in params else params.get("project_id")
        return cls(health, parse_project_id_or_slug(raw) if raw else None)


@dataclass(frozen=True)
class ReleaseListParams:
    """``GET …/releases/`` (docs/api.md §5.2), apart from the filters' own parameters."""

    health: HealthParams
    flatten: bool
    health_stat: str
    sort: str

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ReleaseListParams:
        health = HealthParams.parse(params)
        flatten = parse_bool(params, "flatten")
        health_stat = params.get("healthStat") or "sessions"
        if health_stat not in HEALTH_STATS:
            raise ParseError("invalid healthStat")
        sort = parse_sort(params, LIST_SORTS)
        if sort in HEALTH_SORTS and not flatten:
            raise ParseError("sorting by crash statistics requires flattening (flatten=1)")
        return cls(health, flatten, health_stat, sort)
