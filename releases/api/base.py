"""Organization endpoint plumbing: the organization of the URL and the caller's access."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.db.models import Q
from django.http import QueryDict
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import ApiToken, Organization

from ..access import Access, access_for


def get_organization_or_404(id_or_slug: str) -> Organization:
    """An organization by numeric id or by slug (slugs are never purely numeric)."""
    numeric = id_or_slug.isascii() and id_or_slug.isdigit()
    lookup = Q(pk=int(id_or_slug)) if numeric else Q(slug=id_or_slug)
    organization = Organization.objects.filter(lookup).first()
    if organization is None:
        raise exceptions.NotFound("The requested resource does not exist")
    return organization


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


class OrganizationEndpointMixin(APIView):
    """For views under ``organizations/<organization_id_or_slug>/``.

    ``self.organization`` resolves the organization (404 when unknown); ``self.access`` is the
    caller's access to it, checked against the permission class's ``scope_map`` (403 when the
    caller is not part of the organization or lacks every suitable scope).
    """

    @cached_property
    def organization(self) -> Organization:
        return get_organization_or_404(self.kwargs["organization_id_or_slug"])

    @cached_property
    def access(self) -> Access:
        token = self.request.auth if isinstance(self.request.auth, ApiToken) else None
        access = access_for(self.request.user, token, self.organization)
        required = self._required_scopes()
        if access is None or (required and not access.has_any_scope(required)):
            raise exceptions.PermissionDenied()
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
