"""What a caller may do in one organization: scopes and visible projects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import ApiToken, Organization, OrganizationMember
from accounts.scopes import GLOBAL_ROLES, ROLE_SCOPES

from .models import ChangeStamp, Project

#: The largest id a database column holds (a signed 64-bit integer). A greater number names
#: nothing: SQLite cannot even compare with it (OverflowError), so it never reaches a query.
MAX_ID = 2**63 - 1


def is_number(value: str) -> bool:
    """A numeric id: ASCII digits only (``str.isdigit`` also accepts ``²``, which ``int()``
    refuses)."""
    return value.isascii() and value.isdigit()


def is_id(value: int | str) -> bool:
    """Whether ``value`` (an int or a numeric string) can be a row id: 0 to :data:`MAX_ID`."""
    if isinstance(value, str):
        if not is_number(value) or len(value) > 19:
            return False
        value = int(value)
    return 0 <= value <= MAX_ID


@dataclass(frozen=True)
class Access:
    """A caller's access to one organization.

    ``sees_all_projects`` is true for organization tokens and superusers. Member access is split
    as in Sentry: *member* projects are those of the caller's teams; *accessible* projects add
    every project when the organization has open membership.
    """

    organization: Organization
    scopes: frozenset[str]
    member: OrganizationMember | None = None
    sees_all_projects: bool = False

    def has_any_scope(self, scopes: frozenset[str] | set[str]) -> bool:
        return bool(self.scopes & scopes)

    def member_projects(self) -> QuerySet[Project]:
        projects = Project.objects.filter(organization=self.organization)
        if self.sees_all_projects:
            return projects
        if self.member is None:
            return projects.none()
        return projects.filter(teams__members=self.member).distinct()

    def accessible_projects(self) -> QuerySet[Project]:
        member = self.member
        if member is not None and (
            self.organization.open_membership or member.role in GLOBAL_ROLES
        ):
            return Project.objects.filter(organization=self.organization)
        return self.member_projects()


@lru_cache(maxsize=8)
def _organization_query(vendor: str, column: str, with_member: bool) -> str:
    quote = connection.ops.quote_name
    fields = ", ".join(f"o.{quote(name)}" for name in _ORGANIZATION_COLUMNS)
    member = "m.id, m.role" if with_member else "NULL, NULL"
    join = (
        f" LEFT JOIN {quote(OrganizationMember._meta.db_table)} m"
        " ON m.organization_id = o.id AND m.user_id = %s"
        if with_member
        else ""
    )
    # Names from model metadata; values are parameters.
    return (
        f"SELECT {fields}, COALESCE(s.value, 0), {member} "  # noqa: S608
        f"FROM {quote(Organization._meta.db_table)} o "
        f"LEFT JOIN {quote(ChangeStamp._meta.db_table)} s ON s.organization_id = o.id{join} "
        f"WHERE o.{quote(column)} = %s"
    )


_ORGANIZATION_FIELDS = Organization._meta.concrete_fields
_ORGANIZATION_COLUMNS = [str(field.column) for field in _ORGANIZATION_FIELDS]


@lru_cache(maxsize=8)
def _converters(vendor: str) -> list[list[Any]]:
    return [connection.ops.get_db_converters(f.get_col("o")) for f in _ORGANIZATION_FIELDS]


def _from_db(values: tuple[Any, ...]) -> list[Any]:
    """Column values as the ORM would give them (SQLite keeps datetimes as text)."""
    converted = []
    converters = _converters(connection.vendor)
    for field, value, field_converters in zip(
        _ORGANIZATION_FIELDS, values, converters, strict=True
    ):
        for converter in field_converters:
            value = converter(value, field, connection)
        converted.append(value)
    return converted


def organization_statement(
    *, pk: int | None = None, slug: str | None = None, user_id: int | None = None
) -> tuple[str, list[Any]]:
    """The statement of :func:`find_organization`: SQL and parameters (``user_id``: the caller
    whose membership it joins, None for none). Its row is read by :func:`organization_from_row`.
    """
    column, value = ("id", pk) if pk is not None else ("slug", slug)
    sql = _organization_query(connection.vendor, column, user_id is not None)
    return sql, [user_id, value] if user_id is not None else [value]


def organization_from_row(
    row: Sequence[Any] | None, user: Any = None
) -> tuple[Organization | None, OrganizationMember | None]:
    """The organization and ``user``'s membership from a row of :func:`organization_statement`
    (None, or NULLs as a LEFT JOIN gives them: no such organization)."""
    if row is None or row[0] is None:
        return None, None
    count = len(_ORGANIZATION_FIELDS)
    organization = Organization.from_db(
        connection.alias, [f.attname for f in _ORGANIZATION_FIELDS], _from_db(tuple(row[:count]))
    )
    organization.change_stamp, member_id, role = row[count:]  # type: ignore[attr-defined]
    if member_id is None:
        return organization, None
    # The fields access needs; any other is read on first use.
    member = OrganizationMember.from_db(
        connection.alias,
        ["id", "organization_id", "user_id", "role"],
        [member_id, organization.pk, user.pk, role],
    )
    member.organization, member.user = organization, user
    return organization, member


def find_organization(
    *, pk: int | None = None, slug: str | None = None, user: Any = None
) -> tuple[Organization | None, OrganizationMember | None]:
    """The organization of that id or slug, with its ``change_stamp`` (``stamps.py``), and
    ``user``'s membership in it (None for anonymous callers and non-members).

    Every API request resolves its organization here, so it is one plain statement: the ORM's
    version of the same join (a FilteredRelation and a subquery) took 3.6 ms a call, this one
    0.9 ms (docs/performance.md §2.2).
    """
    signed_in = user is not None and user.is_authenticated
    sql, params = organization_statement(pk=pk, slug=slug, user_id=user.pk if signed_in else None)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return organization_from_row(row, user)


#: ``access_for``'s ``member`` when the caller's membership is still to be looked up.
LOOK_UP = object()


def access_for(
    user: Any,
    token: ApiToken | None,
    organization: Organization,
    *,
    member: Any = LOOK_UP,
) -> Access | None:
    """The caller's access to ``organization``, or None when the caller is not part of it.

    ``member`` is the caller's membership when already loaded (:func:`find_organization`),
    None when there is none; by default it is looked up.
    """
    if token is not None and token.kind == ApiToken.Kind.ORGANIZATION:
        if token.organization_id != organization.pk:
            return None
        return Access(organization, frozenset(token.scopes), sees_all_projects=True)
    if user is None or not user.is_authenticated:
        return None
    if member is LOOK_UP:
        member = OrganizationMember.objects.filter(organization=organization, user=user).first()
    if member is not None:
        scopes = ROLE_SCOPES[member.role]
    elif user.is_superuser and token is None:
        # Superuser rights come with a signed-in session only, never through an API token.
        scopes = ROLE_SCOPES["owner"]
    else:
        return None
    if token is not None:
        scopes = scopes & frozenset(token.scopes)
    return Access(organization, scopes, member=member, sees_all_projects=member is None)


def refusal(user: Any, token: ApiToken | None, organization: Organization) -> str:
    """Why :func:`access_for` gives no access: a 403's detail that says what is missing."""
    if token is not None and token.kind == ApiToken.Kind.ORGANIZATION:
        return "This organization token belongs to another organization."
    if getattr(user, "is_superuser", False) and token is not None:
        return (
            f"You are not a member of the organization {organization.slug!r}: superuser rights "
            "come with a signed-in admin session only, never through an API token."
        )
    return f"You are not a member of the organization {organization.slug!r}."


def find_projects(projects: QuerySet[Project], values: Iterable[int | str]) -> list[Project] | None:
    """The projects among ``projects`` that ``values`` name by id or slug, ordered by id.

    None when any value names no project there (ids beyond :data:`MAX_ID` name none); each
    caller answers that its own way.
    """
    values = list(values)
    numbers = [v for v in values if isinstance(v, int) or is_number(v)]
    if not all(is_id(v) for v in numbers):
        return None
    ids = {int(v) for v in numbers}
    slugs = {v for v in values if isinstance(v, str) and not is_number(v)}
    found = list(projects.filter(Q(pk__in=ids) | Q(slug__in=slugs)).order_by("pk"))
    if ids <= {p.pk for p in found} and slugs <= {p.slug for p in found}:
        return found
    return None
