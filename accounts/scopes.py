"""Sentry's scope names and the scopes each organization role grants."""

from __future__ import annotations

ORG_READ = "org:read"
ORG_WRITE = "org:write"
ORG_ADMIN = "org:admin"
ORG_INTEGRATIONS = "org:integrations"
ORG_BILLING = "org:billing"
ORG_CI = "org:ci"
PROJECT_READ = "project:read"
PROJECT_WRITE = "project:write"
PROJECT_ADMIN = "project:admin"
PROJECT_RELEASES = "project:releases"
TEAM_READ = "team:read"
TEAM_WRITE = "team:write"
TEAM_ADMIN = "team:admin"
MEMBER_READ = "member:read"
MEMBER_WRITE = "member:write"
MEMBER_ADMIN = "member:admin"
EVENT_READ = "event:read"
EVENT_WRITE = "event:write"
EVENT_ADMIN = "event:admin"
ALERTS_READ = "alerts:read"
ALERTS_WRITE = "alerts:write"

ALL_SCOPES: frozenset[str] = frozenset(
    {
        ORG_READ, ORG_WRITE, ORG_ADMIN, ORG_INTEGRATIONS, ORG_BILLING, ORG_CI,
        PROJECT_READ, PROJECT_WRITE, PROJECT_ADMIN, PROJECT_RELEASES,
        TEAM_READ, TEAM_WRITE, TEAM_ADMIN, MEMBER_READ, MEMBER_WRITE, MEMBER_ADMIN,
        EVENT_READ, EVENT_WRITE, EVENT_ADMIN, ALERTS_READ, ALERTS_WRITE,
    }
)  # fmt: skip

_MEMBER = {
    EVENT_READ, EVENT_WRITE, EVENT_ADMIN, PROJECT_RELEASES, PROJECT_READ, ORG_READ,
    MEMBER_READ, TEAM_READ, ALERTS_READ, ALERTS_WRITE,
}  # fmt: skip
_ADMIN = _MEMBER | {PROJECT_WRITE, PROJECT_ADMIN, TEAM_WRITE, TEAM_ADMIN, ORG_INTEGRATIONS}
_MANAGER = _ADMIN | {MEMBER_WRITE, MEMBER_ADMIN}
_OWNER = _MANAGER | {ORG_WRITE, ORG_ADMIN, ORG_BILLING}

# Mirrors Sentry's default role definitions (``SENTRY_ROLES``).
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "member": frozenset(_MEMBER),
    "admin": frozenset(_ADMIN),
    "manager": frozenset(_MANAGER),
    "owner": frozenset(_OWNER),
    "billing": frozenset({ORG_BILLING, MEMBER_READ}),
}

# Roles with access to every team's projects whatever the membership setting, as in Sentry.
GLOBAL_ROLES: frozenset[str] = frozenset({"manager", "owner"})

# Organization tokens are for CI: they may only carry ``org:ci`` (and read the org).
ORG_TOKEN_SCOPES: frozenset[str] = frozenset({ORG_CI})
