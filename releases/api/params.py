"""Parsing and validation of the release endpoints' query parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping

from rest_framework.exceptions import ParseError

from ..access import is_number
from ..health.periods import STATS_PERIODS

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Sentry's slug rule: letters, digits, underscores and hyphens, not only digits.
SLUG_RE = re.compile(r"^(?![0-9]+$)[a-zA-Z0-9_-]+$")

SORTS_DETAILS = ("date", "sessions", "users", "crash_free_sessions", "crash_free_users")


def parse_bool(params: Mapping[str, str], name: str) -> bool:
    """A boolean parameter (DECISIONS.md): 1/true/yes/on or 0/false/no/off/empty."""
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


def _period_error(name: str) -> ParseError:
    choices = ", ".join(f"'{key}'" for key in STATS_PERIODS)
    return ParseError(f"Invalid {name}. Valid choices are {choices}")


def parse_summary_period(params: Mapping[str, str]) -> str:
    value = params.get("summaryStatsPeriod") or "14d"
    if value not in STATS_PERIODS:
        raise _period_error("summaryStatsPeriod")
    return str(value)


def parse_health_stats_period(params: Mapping[str, str], *, health: bool) -> str | None:
    """Validated even when health is off; defaults to ``24h`` when it is on."""
    value = params.get("healthStatsPeriod") or ""
    if value and value not in STATS_PERIODS:
        raise _period_error("healthStatsPeriod")
    if not value:
        return "24h" if health else None
    return str(value)


def parse_project_id_or_slug(value: str) -> int | str:
    """A single project given by numeric id or slug; sentinels are refused (PR #117493)."""
    value = value.strip()
    if is_number(value):
        return int(value)
    if value in ("-1", "$all") or not SLUG_RE.match(value):
        raise ParseError("Invalid project")
    return value
