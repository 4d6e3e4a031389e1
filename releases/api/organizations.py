"""Organization and project endpoints: the caller's organizations and the projects they see.

``GET /api/0/organizations/``, ``…/organizations/{org}/``, ``…/organizations/{org}/projects/``
and ``GET /api/0/projects/``, with Sentry's fields for what we store and fixed values for
what we do not (docs/api.md). Each page costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Exists, Min, OuterRef, Q, QuerySet, Subquery
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken, Organization, OrganizationMember
from accounts.permissions import OrganizationPermission, ProjectPermission
from accounts.scopes import GLOBAL_ROLES, ROLE_SCOPES

from ..models import Project, Release, ReleaseProjectEnvironment, SessionRollup
from .base import OrganizationEndpoint
from .pagination import CursorPagination
from .serializers import iso

# What we can say of every organization and project: one region, no billing plans.
ORGANIZATION_FEATURES = ("releases", "release-health")
PROJECT_FEATURES = ("releases",)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _bool_param(request: Request, name: str) -> bool:
    raw = (request.query_params.get(name) or "").lower()
    if raw not in _TRUE | _FALSE:
        raise ParseError(f"Invalid value for {name}: expected true or false.")
    return raw in _TRUE


def _token(request: Request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


def serialize_organization(
    organization: Organization, request: Request, access: Iterable[str] | None = None
) -> dict[str, Any]:
    """Sentry's organization summary; ``access`` (the caller's scopes) on details only."""
    base = request.build_absolute_uri("/").rstrip("/")
    data: dict[str, Any] = {
        "id": str(organization.pk),
        "slug": organization.slug,
        "status": {"id": "active", "name": "active"},
        "name": organization.name,
        "dateCreated": iso(organization.date_added),
        "isEarlyAdopter": False,
        "require2FA": False,
        "avatar": {"avatarType": "letter_avatar", "avatarUuid": None, "avatarUrl": None},
        "links": {"organizationUrl": base, "regionUrl": base},
        "hasAuthProvider": False,
        "allowMemberInvite": True,
        "allowMemberProjectCreation": False,
        "allowSuperuserAccess": False,
        "features": list(ORGANIZATION_FEATURES),
    }
    if access is not None:
        data["access"] = sorted(access)
        data["openMembership"] = organization.open_membership
        data["onboardingTasks"] = []
        data["extraOptions"] = {}
    return data


class OrganizationIndexEndpoint(APIView):
    """``GET /api/0/organizations/``: the caller's organizations, newest first.

    A user token lists the organizations the user is a member of where the token and the
    role together grant an organization read scope (``owner=1``: only those the user owns);
    an organization token lists its own organization. ``query`` is a substring of the name
    or slug.
    """

    permission_classes = [OrganizationPermission]

    def get(self, request: Request) -> Response:
        owner_only = _bool_param(request, "owner")
        organizations = _caller_organizations(request, owner_only=owner_only)
        if query := request.query_params.get("query"):
            organizations = organizations.filter(
                Q(name__icontains=query) | Q(slug__icontains=query)
            )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(organizations.order_by("-date_added", "-pk"), request)
        return paginator.get_paginated_response(
            [serialize_organization(org, request) for org in page]
        )


def _caller_organizations(request: Request, *, owner_only: bool = False) -> QuerySet[Organization]:
    token = _token(request)
    if token is not None and token.kind == ApiToken.Kind.ORGANIZATION:
        if owner_only:
            return Organization.objects.none()
        return Organization.objects.filter(pk=token.organization_id or 0)
    roles = _roles_granting(token, OrganizationPermission.scope_map["GET"])
    if owner_only:
        roles &= {OrganizationMember.Role.OWNER.value}
    memberships = OrganizationMember.objects.filter(user_id=request.user.pk or 0, role__in=roles)
    return Organization.objects.filter(pk__in=memberships.values("organization_id"))


def _roles_granting(token: ApiToken | None, wanted: frozenset[str]) -> set[str]:
    """The roles whose scopes, limited by the user token's, include one of ``wanted``."""
    limit = frozenset(token.scopes) if token is not None else None
    return {
        role
        for role, scopes in ROLE_SCOPES.items()
        if (scopes if limit is None else scopes & limit) & wanted
    }


class OrganizationDetailsEndpoint(OrganizationEndpoint):
    """``GET /api/0/organizations/{org}/``: the organization, with the caller's scopes."""

    permission_classes = [OrganizationPermission]

    def get(self, request: Request, organization_id_or_slug: str) -> Response:
        return Response(serialize_organization(self.organization, request, self.access.scopes))


class ProjectAttrs:
    """What a page of projects needs beyond its rows: environments and first events.

    Two queries for the whole page (teams are prefetched with the rows).
    """

    def __init__(self, projects: Sequence[Project]) -> None:
        self.environments: dict[int, list[str]] = defaultdict(list)
        self.first_event: dict[int, datetime | None] = {}
        if not projects:
            return
        rows = (
            ReleaseProjectEnvironment.objects.filter(project_id__in=[p.pk for p in projects])
            .values("project_id", "environment__name")
            .annotate(first=Min("first_seen"))
            .order_by("project_id", "environment__name")
        )
        for row in rows:
            self.environments[row["project_id"]].append(row["environment__name"])
            first = row["first"]
            current = self.first_event.get(row["project_id"])
            if first is not None and (current is None or first < current):
                self.first_event[row["project_id"]] = first


def project_rows(projects: QuerySet[Project], member_of: Any) -> QuerySet[Project]:
    """Annotate what the serializer reads: membership, sessions and the latest release.

    ``member_of`` is a ``Q`` over ``team__members`` naming the caller's memberships, or None
    when the caller is no member (organization tokens).
    """
    team_links = Project.teams.through.objects.filter(project_id=OuterRef("pk"))
    latest = Release.objects.filter(release_projects__project=OuterRef("pk")).order_by(
        "-date_added", "-pk"
    )
    return (
        projects.annotate(
            is_member=Exists(team_links.filter(member_of))
            if member_of is not None
            else Exists(team_links.none()),
            has_sessions=Exists(SessionRollup.objects.filter(project=OuterRef("pk"))),
            latest_version=Subquery(latest.values("version")[:1]),
        )
        .select_related("organization")
        .prefetch_related("teams")
    )


def serialize_project(
    project: Project,
    attrs: ProjectAttrs,
    scopes: Iterable[str],
    *,
    with_organization: bool = False,
    request: Request | None = None,
) -> dict[str, Any]:
    """Sentry's project summary (``ProjectSummarySerializer``); reads annotations and
    prefetches only."""
    teams = [
        {"id": str(team.pk), "name": team.name, "slug": team.slug}
        for team in sorted(project.teams.all(), key=lambda t: t.slug)
    ]
    latest = getattr(project, "latest_version", None)
    has_sessions = bool(getattr(project, "has_sessions", False))
    data: dict[str, Any] = {
        "id": str(project.pk),
        "slug": project.slug,
        "name": project.name,
        "platform": project.platform,
        "dateCreated": iso(project.date_added),
        "isBookmarked": False,
        "isMember": bool(getattr(project, "is_member", False)),
        "features": list(PROJECT_FEATURES),
        "firstEvent": iso(attrs.first_event.get(project.pk)),
        "firstTransactionEvent": False,
        "access": sorted(scopes),
        "hasAccess": True,
        "hasFeedbacks": False,
        "hasFlags": False,
        "hasMinifiedStackTrace": False,
        "hasMonitors": False,
        "hasNewFeedbacks": False,
        "hasProfiles": False,
        "hasReplays": False,
        "hasSessions": has_sessions,
        "hasInsightsHttp": False,
        "hasInsightsDb": False,
        "hasInsightsAssets": False,
        "hasInsightsAppStart": False,
        "hasInsightsScreenLoad": False,
        "hasInsightsVitals": False,
        "hasInsightsCaches": False,
        "hasInsightsQueues": False,
        "hasInsightsAgentMonitoring": False,
        "hasInsightsMCP": False,
        "hasLogs": False,
        "hasTraceMetrics": False,
        "team": teams[0] if teams else None,
        "teams": teams,
        "platforms": list(project.platforms or []),
        "hasUserReports": False,
        "environments": attrs.environments.get(project.pk, []),
        "latestRelease": {"version": latest} if latest is not None else None,
        "latestDeploys": None,
    }
    if with_organization and request is not None:
        data["organization"] = serialize_organization(project.organization, request)
    return data


class OrganizationProjectsEndpoint(OrganizationEndpoint):
    """``GET /api/0/organizations/{org}/projects/``: the projects the caller can access, by
    slug; ``query`` is a substring of the name or slug."""

    permission_classes = [OrganizationPermission]

    def get(self, request: Request, organization_id_or_slug: str) -> Response:
        access = self.access
        projects = access.accessible_projects()
        if query := request.query_params.get("query"):
            projects = projects.filter(Q(name__icontains=query) | Q(slug__icontains=query))
        member_of = Q(team__members=access.member) if access.member is not None else None
        rows = project_rows(projects, member_of).order_by("slug", "pk")
        paginator = CursorPagination()
        page = paginator.paginate_queryset(rows, request)
        attrs = ProjectAttrs(page)
        return paginator.get_paginated_response(
            [serialize_project(p, attrs, access.scopes) for p in page]
        )


class ProjectIndexEndpoint(APIView):
    """``GET /api/0/projects/``: every project the caller can access, in every organization,
    newest first, each with its organization.

    Access per organization follows ``releases.access``: a member reaches the projects of
    their teams (all of them with open membership or a global role), an organization token
    every project of its organization.
    """

    permission_classes = [ProjectPermission]

    def get(self, request: Request) -> Response:
        token = _token(request)
        scopes_by_org: dict[int, frozenset[str]] = {}
        if token is not None and token.kind == ApiToken.Kind.ORGANIZATION:
            organization_id = token.organization_id or 0
            visible = Q(organization_id=organization_id)
            scopes_by_org[organization_id] = frozenset(token.scopes)
            member_of = None
        else:
            visible = Q(pk__in=[])
            limit = frozenset(token.scopes) if token is not None else None
            wanted = ProjectPermission.scope_map["GET"]
            for member in OrganizationMember.objects.filter(
                user_id=request.user.pk or 0
            ).select_related("organization"):
                scopes = ROLE_SCOPES[member.role]
                scopes = scopes if limit is None else scopes & limit
                if not scopes & wanted:
                    continue
                scopes_by_org[member.organization_id] = scopes
                if member.organization.open_membership or member.role in GLOBAL_ROLES:
                    visible |= Q(organization_id=member.organization_id)
                else:
                    visible |= Q(
                        organization_id=member.organization_id,
                        pk__in=Project.teams.through.objects.filter(team__members=member).values(
                            "project_id"
                        ),
                    )
            member_of = Q(team__members__user=request.user)
        if query := request.query_params.get("query"):
            visible &= Q(name__icontains=query) | Q(slug__icontains=query)
        rows = project_rows(Project.objects.filter(visible), member_of).order_by(
            "-date_added", "-pk"
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(rows, request)
        attrs = ProjectAttrs(page)
        return paginator.get_paginated_response(
            [
                serialize_project(
                    p,
                    attrs,
                    scopes_by_org.get(p.organization_id, frozenset()),
                    with_organization=True,
                    request=request,
                )
                for p in page
            ]
        )
