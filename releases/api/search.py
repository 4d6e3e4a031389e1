"""The release search: ``query`` text parsed by ``querysyntax`` and folded into one ``Q``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import and_, or_
from typing import Any, ClassVar

from django.db.models import (
    Case,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from .. import querysyntax as qs
from ..access import is_id, is_number
from ..health.sorts import stage_filter
from ..models import (
    OPEN_STATUS,
    Environment,
    Project,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
)
from ..versioning import parse_release

# ``1.0 (1234)`` also finds ``…1.0+1234``: the UI shows build suffixes that way.
_SUFFIX_FORM = re.compile(r"^(?P<text>.+?)\s+\((?P<build>[^()]+)\)\s*$")
_RELATIVE_DATE = re.compile(r"^(?P<sign>[+-])(?P<amount>\d+)(?P<unit>[smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_COMPARISONS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_FLIPPED = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}
SEMVER_FORMAT_ERROR = (
    'Invalid format of semantic version. For searching non-semver releases, use "release:" instead.'
)
SEMVER_IN_ERROR = "Invalid operation 'IN' for semantic version filter."


def parse_datetime_param(value: str) -> datetime:
    """An ISO-8601 date or datetime, in UTC (naive values are UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # In UTC: PostgreSQL refuses some offsets Python allows (beyond ±15:59).
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fold(node: qs.Node, leaf: Callable[[qs.Term | qs.FreeText], Q]) -> Q:
    """One ``Q`` for a search tree: its ANDs and ORs over what ``leaf`` gives each leaf."""
    if isinstance(node, qs.And | qs.Or):
        children = [fold(child, leaf) for child in node.children]
        return reduce(and_ if isinstance(node, qs.And) else or_, children)
    return leaf(node)


def free_text_q(text: str) -> Q:
    """Case-insensitive substring of the version, plus the ``X (Y)`` → ``X+Y`` rule."""
    lookup = Q(version__icontains=text)
    match = _SUFFIX_FORM.match(text)
    if match:
        lookup |= Q(version__icontains=f"{match['text']}+{match['build']}")
    return lookup


class ReleaseSearch:
    """The ``query`` search syntax over releases, with AND, OR and parentheses
    (docs/search.md, docs/decisions.md).

    Each release key maps to a method building a ``Q``; free text is a case-insensitive
    substring of the version. ``latest`` and ``release.stage`` are relative to the selected
    projects and environments. Unknown keys are refused with Sentry's message.
    """

    KEY_TO_LOOKUP: ClassVar[dict[str, str]] = {
        "release": "release_q",
        "release.version": "semver_q",
        "release.package": "package_q",
        "release.build": "build_q",
        "release.stage": "stage_q",
        "finalized": "finalized_q",
        "release.created": "created_q",
    }

    def __init__(
        self, projects: Sequence[Project], environments: Sequence[Environment] | None
    ) -> None:
        self.projects = projects
        self.environments = environments

    @classmethod
    def parse(cls, text: str) -> qs.Node | None:
        """The tree of ``text`` (None when empty); :class:`QuerySyntaxError` when malformed."""
        return qs.parse(text, check_key=cls.check_key)

    @classmethod
    def check_key(cls, key: str) -> None:
        if key not in cls.KEY_TO_LOOKUP:
            raise qs.QuerySyntaxError(f"Invalid key for this search: {key}")

    def to_q(self, node: qs.Node) -> Q:
        """One ``Q`` for the tree; :class:`QuerySyntaxError` for a value a key refuses."""
        return fold(node, self._leaf_q)

    def _leaf_q(self, node: qs.Term | qs.FreeText) -> Q:
        if isinstance(node, qs.FreeText):
            return free_text_q(node.text)
        method: Callable[[qs.Term], Q] = getattr(self, self.KEY_TO_LOOKUP[node.key])
        return method(node)

    # --- one method per key ------------------------------------------------------------------

    @staticmethod
    def _text_value(term: qs.Term) -> str:
        """Keys without comparisons keep a written ``>``/``<`` as part of the value."""
        assert isinstance(term.value, str)  # noqa: S101 - lists are handled by the callers
        prefix = term.op if term.op in _COMPARISONS else ""
        return prefix + term.value

    @staticmethod
    def _is_negative(term: qs.Term) -> bool:
        return term.negated != (term.op == "!=")

    def release_q(self, term: qs.Term) -> Q:
        values = term.value if isinstance(term.value, tuple) else (self._text_value(term),)
        lookup = Q()
        for value in values:
            if qs.has_wildcard(value):
                lookup |= Q(version__regex=qs.wildcard_to_regex(value))
            elif value == "latest":
                lookup |= Q(version__in=latest_versions(self.projects, self.environments))
            else:
                lookup |= Q(version=qs.unescape(value))
        if not values:
            lookup = Q(pk__in=[])
        return ~lookup if self._is_negative(term) else lookup

    def package_q(self, term: qs.Term) -> Q:
        values = term.value if isinstance(term.value, tuple) else (self._text_value(term),)
        lookup = Q(package__in=[qs.unescape(v) for v in values])
        return ~lookup if self._is_negative(term) else lookup

    def build_q(self, term: qs.Term) -> Q:
        """A number compares with ``build_number``; text matches ``build_code`` (``*``: prefix)."""
        if isinstance(term.value, tuple):
            raise qs.QuerySyntaxError(SEMVER_IN_ERROR)
        number = term.value if is_number(term.value) and int(term.value) < 2**63 else None
        if number is not None and term.op in _COMPARISONS:
            op = _FLIPPED[term.op] if term.negated else term.op
            return Q(**{f"build_number__{_COMPARISONS[op]}": int(number)})
        if number is not None:
            lookup = Q(build_number=int(number))
        elif term.wildcard:
            lookup = Q(build_code__regex=qs.wildcard_to_regex(self._text_value(term)))
        else:
            lookup = Q(build_code=qs.unescape(self._text_value(term)))
        return ~lookup if self._is_negative(term) else lookup

    def semver_q(self, term: qs.Term) -> Q:
        if isinstance(term.value, tuple):
            raise qs.QuerySyntaxError(SEMVER_IN_ERROR)
        value = qs.unescape(term.value) if not term.wildcard else term.value
        package, _, version = value.rpartition("@")
        parsed = parse_release(f"{package or 'dummy'}@{version}") if not term.wildcard else None
        package_lookup = Q(package=package) if package else Q()
        if parsed is not None and parsed.is_semver and parsed.fits_bigint:
            key = (
                parsed.major, parsed.minor, parsed.patch, parsed.revision, parsed.pre or "",
            )  # fmt: skip
            op = term.op
            if op in ("=", "!="):
                lookup = package_lookup & semver_compare_q("=", key)
                return ~lookup if self._is_negative(term) else lookup
            op = _FLIPPED[op] if term.negated else op
            return package_lookup & semver_compare_q(op, key)
        lookup = package_lookup & semver_prefix_q(version)
        return ~lookup if self._is_negative(term) else lookup

    def stage_q(self, term: qs.Term) -> Q:
        environments = self.environments
        if environments is None or len(environments) != 1:
            raise qs.QuerySyntaxError("Choose a single environment to filter by release stage.")
        values = term.value if isinstance(term.value, tuple) else (self._text_value(term),)
        try:
            lookup = Q(
                stage_filter(
                    values,
                    environment_id=environments[0].pk,
                    project_ids=[p.pk for p in self.projects],
                )
            )
        except ValueError as exc:
            raise qs.QuerySyntaxError(str(exc)) from None
        return ~lookup if self._is_negative(term) else lookup

    def finalized_q(self, term: qs.Term) -> Q:
        value = self._text_value(term) if isinstance(term.value, str) else ""
        if value.lower() not in ("true", "false", "1", "0"):
            raise qs.QuerySyntaxError(
                f"finalized: Invalid boolean: {value}. Expected true, 1, false, or 0."
            )
        finalized = value.lower() in ("true", "1")
        if self._is_negative(term):
            finalized = not finalized
        return Q(date_released__isnull=not finalized)

    def created_q(self, term: qs.Term) -> Q:
        if isinstance(term.value, tuple):
            raise qs.QuerySyntaxError("release.created: lists are not supported for dates.")
        start, end, sign = parse_search_date(term.value)
        if term.op in ("=", "!="):
            if sign == "-":  # within the last N units
                lookup = Q(date_added__gte=start)
            elif sign == "+":  # older than N units
                lookup = Q(date_added__lte=start)
            elif start == end:
                lookup = Q(date_added=start)
            else:
                lookup = Q(date_added__gte=start, date_added__lt=end)
            return ~lookup if self._is_negative(term) else lookup
        op = _FLIPPED[term.op] if term.negated else term.op
        # A bare day is the interval [start, end): ">" means after it, "<=" up to its end.
        if op == ">":
            return Q(date_added__gte=end) if end != start else Q(date_added__gt=start)
        if op == ">=":
            return Q(date_added__gte=start)
        if op == "<":
            return Q(date_added__lt=start)
        return Q(date_added__lt=end) if end != start else Q(date_added__lte=start)


def parse_search_date(value: str) -> tuple[datetime, datetime, str | None]:
    """A search date as ``(start, end, sign)``.

    Relative values (``-3d``, ``+1h``) are the instant now minus the duration, with their
    sign; a bare day is that whole UTC day ``[start, end)``; a datetime is an instant.
    """
    try:
        relative = _RELATIVE_DATE.match(value)
        if relative:
            delta = timedelta(**{UNITS[relative["unit"]]: int(relative["amount"])})
            moment = timezone.now() - delta
            return moment, moment, relative["sign"]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day, day + timedelta(days=1), None
        moment = parse_datetime_param(value)
    except (ValueError, OverflowError):
        raise qs.QuerySyntaxError(
            f"release.created: Invalid date: {value}. Expected +/-duration (e.g. +1h) or "
            "ISO 8601-like (e.g. 2024-05-01T12:34:56.78)."
        ) from None
    return moment, moment, None


_SEMVER_COLUMNS = ("major", "minor", "patch", "revision")


def _prerelease_case(prefix: str = "") -> Case:
    """1 for a release without pre-release, 0 with one: ``1.0.0-rc`` sorts before ``1.0.0``."""
    return Case(
        When(**{f"{prefix}prerelease": ""}, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )


def semver_compare_q(op: str, key: tuple[int | None, ...] | tuple[Any, ...]) -> Q:
    """Compare the semver columns with ``key`` = (major, minor, patch, revision, pre).

    Lexicographic, portable (no row values), and only semver releases can match.
    """
    *numbers, pre = key
    if op == "=":
        return Q(**dict(zip(_SEMVER_COLUMNS, numbers, strict=True)), prerelease=pre)
    greater = op in (">", ">=")
    # The tail of the tuple: (no pre-release ranks above any pre-release, pre-release text).
    if greater:
        strict = (Q(prerelease="") | Q(prerelease__gt=pre)) if pre else Q(pk__in=[])
    else:
        strict = (~Q(prerelease="") & Q(prerelease__lt=pre)) if pre else ~Q(prerelease="")
    if op in (">=", "<="):
        strict |= Q(prerelease=pre)
    comparison = "gt" if greater else "lt"
    for index in reversed(range(len(numbers))):
        column = _SEMVER_COLUMNS[index]
        strict = Q(**{f"{column}__{comparison}": numbers[index]}) | (
            Q(**{column: numbers[index]}) & strict
        )
    return strict & Q(major__isnull=False)


def semver_prefix_q(version: str) -> Q:
    """``1.*``, ``1.2.X`` or ``*``: equality on the numeric components before the wildcard.

    Only semver releases match, even ``*``.
    """
    lookup = Q(major__isnull=False)
    for column, part in zip(_SEMVER_COLUMNS, version.split(".")[:4], strict=False):
        if part in ("*", "X"):
            return lookup
        if not is_number(part):
            raise qs.QuerySyntaxError(SEMVER_FORMAT_ERROR)
        if not is_id(part):  # beyond any stored component: matches nothing
            return Q(pk__in=[])
        lookup &= Q(**{column: int(part)})
    if not version.endswith(("*", "X")):
        raise qs.QuerySyntaxError(SEMVER_FORMAT_ERROR)
    return lookup


def semver_ordering(prefix: str = "") -> list[Any]:
    """``sort=semver``: highest version first, non-semver releases last, then newest.

    ``prefix`` reaches the release through a relation (``"release__"``).
    """
    return [
        *(F(f"{prefix}{column}").desc(nulls_last=True) for column in _SEMVER_COLUMNS),
        _prerelease_case(prefix).desc(),
        F(f"{prefix}prerelease").desc(nulls_last=True),
        F(f"{prefix}date_added").desc(),
        F(f"{prefix}id").desc(),
    ]


def latest_versions(
    projects: Sequence[Project], environments: Sequence[Environment] | None
) -> list[str]:
    """The latest release of each project (docs/search.md §3.3), in three queries.

    A project "follows semver" by its newest open releases; semver projects take their
    highest version, the others their newest by ``COALESCE(date_released, date_added)``.
    """
    links = ReleaseProject.objects.filter(
        project__in=projects,
        release__in=Release.objects.filter(OPEN_STATUS),
    )
    if environments is not None:
        links = links.filter(
            Exists(
                ReleaseProjectEnvironment.objects.filter(
                    release=OuterRef("release_id"),
                    project=OuterRef("project_id"),
                    environment__in=environments,
                )
            )
        )

    def first_per_project(rows: QuerySet[ReleaseProject], order: list[Any], limit: int) -> Any:
        ranked = rows.annotate(
            rank=Window(RowNumber(), partition_by=F("project_id"), order_by=order)
        )
        return ranked.filter(rank__lte=limit).order_by("project_id", "rank")

    newest_first = [F("release__date_added").desc(), F("release_id").desc()]
    recent: dict[int, list[bool]] = {}
    for project_id, package in first_per_project(links, newest_first, 10).values_list(
        "project_id", "release__package"
    ):
        recent.setdefault(project_id, []).append(package is not None)
    semver = [project_id for project_id, flags in recent.items() if _follows_semver(flags)]
    highest = first_per_project(
        links.filter(project_id__in=semver, release__major__isnull=False),
        semver_ordering("release__"),
        1,
    )
    newest = first_per_project(
        links.exclude(project_id__in=semver),
        [Coalesce("release__date_released", "release__date_added").desc(), F("release_id").desc()],
        1,
    )
    return [
        *highest.values_list("release__version", flat=True),
        *newest.values_list("release__version", flat=True),
    ]


def _follows_semver(recent: list[bool]) -> bool:
    if not recent:
        return False
    if len(recent) < 3:
        return recent[0]
    if len(recent) < 10:
        return any(recent[:3])
    return any(recent[:3]) and sum(recent) >= 3
