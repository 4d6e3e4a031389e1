"""Endpoint plumbing: the organization of the URL, the caller's access, and the release of
the URL that the caller may see."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from django.db.models import Exists, OuterRef
from django.http import QueryDict
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken, Organization, OrganizationMember
from accounts.permissions import OrganizationReleasePermission, missing_scopes

from .. import stamps
from ..access import (
    Access,
    access_for,
    find_organization,
    find_projects,
    is_id,
    is_number,
    organization_from_row,
    organization_statement,
    refusal,
)
from ..models import Project, Release, ReleaseProject, ReleaseQuerySet
from .errors import ResourceNotFound


def _lookup(id_or_slug: str) -> dict[str, Any] | None:
    """``find_organization``'s arguments for a URL's numeric id or slug (slugs are never purely
    numeric), or None when it can name no organization."""
    if not is_number(id_or_slug):
        return {"slug": id_or_slug}
    return {"pk": int(id_or_slug)} if is_id(id_or_slug) else None


def get_organization_or_404(
    id_or_slug: str, user: Any = None, early: tuple[Any, Any] | None = None
) -> tuple[Organization, OrganizationMember | None]:
    """An organization by numeric id or by slug, with its ``change_stamp`` and ``user``'s
    membership in it (None when not a member), in one query, or in none when ``early`` (the
    request's ``known_token_also``, :func:`early_organization`) holds its row already."""
    lookup = _lookup(id_or_slug)
    user_id = user.pk if user is not None and user.is_authenticated else None
    if lookup is None:
        organization, member = None, None
    elif early is not None and early[0] == (id_or_slug, user_id):
        organization, member = organization_from_row(early[1], user)
    else:
        organization, member = find_organization(**lookup, user=user)
    if organization is None:
        raise ResourceNotFound()
    return organization, member


_ORGANIZATION_IN_PATH = re.compile(r"^/api/0/(?:organizations|projects)/([^/\x00]+)/")


def early_organization(path: str, token: ApiToken) -> tuple[Any, str, list[Any]] | None:
    """For a token the process knows, the organization statement of an API path under
    ``organizations/`` or ``projects/``, with its key, to be read in the statement that checks
    the token (``accounts.authentication.check_known_token``, from ``config.ratelimit``): a
    cached answer then costs one statement in all (docs/performance.md §2.2).

    The key is what :func:`get_organization_or_404` compares before it uses the row: the
    URL's organization and the user whose membership was joined, so a path this guesses
    wrong, or a view that asks for another organization, reads its own.
    """
    match = _ORGANIZATION_IN_PATH.match(path)
    if match is None:
        return None
    id_or_slug = match[1]
    user_id = None if token.kind == ApiToken.Kind.ORGANIZATION else token.user_id
    lookup = _lookup(id_or_slug)
    if lookup is None:
        return None
    return ((id_or_slug, user_id), *organization_statement(**lookup, user_id=user_id))


def _has_nul(value: Any) -> bool:
    """Whether a NUL character hides anywhere in parsed request data."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, QueryDict):
        value = dict(value.lists())
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


class OrganizationEndpoint(APIView):
    """For views under ``organizations/<organization_id_or_slug>/``.

    ``self.organization`` resolves the organization (404 when unknown); ``self.access`` is the
    caller's access to it, checked against the permission class's ``scope_map`` (403 when the
    caller is not part of the organization or lacks every suitable scope).
    """

    @cached_property
    def _organization_and_member(self) -> tuple[Organization, OrganizationMember | None]:
        token = self.request.auth if isinstance(self.request.auth, ApiToken) else None
        # An organization token's access never depends on a membership: no join for it.
        org_token = token is not None and token.kind == ApiToken.Kind.ORGANIZATION
        user = None if org_token else self.request.user
        early = getattr(self.request._request, "known_token_also", None)
        if self.request.auth is not getattr(self.request._request, "known_token", None):
            early = None  # read for another token than the one that authenticated
        return get_organization_or_404(self.kwargs["organization_id_or_slug"], user, early)

    @cached_property
    def organization(self) -> Organization:
        return self._organization_and_member[0]

    @cached_property
    def access(self) -> Access:
        token = self.request.auth if isinstance(self.request.auth, ApiToken) else None
        organization, member = self._organization_and_member
        access = access_for(self.request.user, token, organization, member=member)
        if access is None:
            raise exceptions.PermissionDenied(refusal(self.request.user, token, self.organization))
        required = self._required_scopes()
        if required and not access.has_any_scope(required):
            raise exceptions.PermissionDenied(missing_scopes(required, access.scopes))
        return access

    def _required_scopes(self) -> frozenset[str]:
        for permission in self.get_permissions():
            scope_map = getattr(permission, "scope_map", None)
            if scope_map is not None:
                return frozenset(scope_map.get(self.request.method or "", frozenset()))
        return frozenset()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Resolve organization and access up front: 404 and 403 come before anything else.
        self.access  # noqa: B018
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in a query.
        if _has_nul(dict(request.query_params.lists())) or _has_nul(request.data):
            raise exceptions.ParseError("Null characters are not allowed.")

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """DRF's; a successful write also raises the organization's change stamp, in the
        write's transaction (``config.middleware.WriteTransactionMiddleware``)."""
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            request.method not in SAFE_METHODS
            and response.status_code < 400
            and "organization" in self.__dict__
        ):
            stamps.bump([self.organization.pk])
        return response


class ReleaseEndpoint(OrganizationEndpoint):
    """For views about the releases of the URL's organization, and one release by version.

    ``get_release_queryset`` is every release the route covers (project routes narrow it);
    ``get_release`` is the release of the URL if the caller may see it, or change it.
    """

    permission_classes = [OrganizationReleasePermission]

    def get_serializer_context(self) -> dict[str, Any]:
        """DRF's, with ``projects``: what the release serializers may show (docs/api.md
        §6.5)."""
        context: dict[str, Any] = super().get_serializer_context()  # type: ignore[misc]
        return {**context, "projects": self.access.accessible_projects()}

    def get_release_queryset(self) -> ReleaseQuerySet:
        return Release.objects.for_org(self.organization)

    def get_release(self, *, write: bool = False) -> Release:
        """Seeing a release takes access to one of its projects; changing it takes access to
        all of them (docs/api.md §6.4). Either failure is a 404, like an unknown version."""
        accessible = self.access.accessible_projects().values("pk")
        # Whether the caller sees one of its projects, in the same query as the release.
        seen = ReleaseProject.objects.filter(release=OuterRef("pk"), project__in=accessible)
        release = (
            self.get_release_queryset()
            .with_serializer_relations()
            .filter(version=self.kwargs["version"])
            .annotate(visible=Exists(seen))
            .first()
        )
        if release is None or not release.visible:
            raise ResourceNotFound()
        projects = Project.objects.filter(release_projects__release=release)
        if write and projects.exclude(pk__in=accessible).exists():
            raise ResourceNotFound()
        return release


class ProjectRouteMixin(ReleaseEndpoint):
    """The legacy ``/projects/{org}/{project}/releases/…`` routes of sentry-cli 2.x: the same
    endpoints, limited to the releases of one project the caller can access."""

    @cached_property
    def project(self) -> Project:
        found = find_projects(
            self.access.accessible_projects(), [self.kwargs["project_id_or_slug"]]
        )
        if not found:
            raise ResourceNotFound()
        return found[0]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.project  # noqa: B018 - an unknown project is a 404 before anything else

    def get_release_queryset(self) -> ReleaseQuerySet:
        linked = ReleaseProject.objects.filter(project=self.project)
        return super().get_release_queryset().filter(pk__in=linked.values("release_id"))
