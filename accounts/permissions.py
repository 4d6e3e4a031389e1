"""Scope-based permissions for organization endpoints, with a per-method ``scope_map``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rest_framework import permissions
from rest_framework.request import Request

from . import scopes as s
from .models import ApiToken


class ScopedPermission(permissions.BasePermission):
    """Request-level check: the caller is authenticated and a token carries a suitable scope.

    The object-level check (the caller's scopes in the organization) is done by
    ``releases.api.base.OrganizationEndpoint.access`` once the organization is known.
    """

    scope_map: ClassVar[dict[str, frozenset[str]]] = {}

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        scopes = self.scope_map.get(request.method or "")
        if token is None or scopes is None:
            # A method without scopes has no handler either: the view answers 405.
            return token is not None or bool(request.user and request.user.is_authenticated)
        if scopes & set(token.scopes):
            return True
        self.message = missing_scopes(scopes, token.scopes)
        return False


def missing_scopes(needed: Iterable[str], held: Iterable[str]) -> str:
    """A 403's detail that names what is missing (docs/decisions.md §5.3)."""
    return (
        f"This request needs one of the scopes {', '.join(sorted(needed))}; "
        f"the caller has {', '.join(sorted(held)) or 'none'}."
    )


_READ = frozenset({s.PROJECT_READ, s.PROJECT_WRITE, s.PROJECT_ADMIN, s.PROJECT_RELEASES, s.ORG_CI})
_WRITE = frozenset({s.PROJECT_WRITE, s.PROJECT_ADMIN, s.PROJECT_RELEASES, s.ORG_CI})


class OrganizationReleasePermission(ScopedPermission):
    """Sentry's ``OrganizationReleasePermission``."""

    scope_map: ClassVar[dict[str, frozenset[str]]] = {
        "GET": _READ,
        "HEAD": _READ,
        "OPTIONS": _READ,
        "POST": _WRITE,
        "PUT": _WRITE,
        "DELETE": frozenset({s.PROJECT_ADMIN, s.PROJECT_RELEASES}),
    }


class OrganizationRepositoryPermission(ScopedPermission):
    """Repositories: readable with ``org:read`` or ``org:ci``; added by integration managers."""

    scope_map: ClassVar[dict[str, frozenset[str]]] = {
        "GET": frozenset({s.ORG_READ, s.ORG_WRITE, s.ORG_ADMIN, s.ORG_INTEGRATIONS, s.ORG_CI}),
        "HEAD": frozenset({s.ORG_READ, s.ORG_WRITE, s.ORG_ADMIN, s.ORG_INTEGRATIONS, s.ORG_CI}),
        "POST": frozenset({s.ORG_WRITE, s.ORG_ADMIN, s.ORG_INTEGRATIONS}),
    }


_ORG_READ = frozenset({s.ORG_READ, s.ORG_WRITE, s.ORG_ADMIN, s.ORG_CI})


class OrganizationPermission(ScopedPermission):
    """Sentry's ``OrganizationPermission`` for reads: organizations and their project lists.

    ``org:ci`` reads the organization too: organization tokens may name their organization.
    """

    scope_map: ClassVar[dict[str, frozenset[str]]] = {"GET": _ORG_READ, "HEAD": _ORG_READ}


class ProjectPermission(ScopedPermission):
    """Sentry's ``ProjectPermission`` for reads: the caller's projects across organizations."""

    scope_map: ClassVar[dict[str, frozenset[str]]] = {"GET": _READ, "HEAD": _READ}
