"""Shared fixtures: an organization with a team, a member, tokens and API clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts import ratelimits
from accounts.authentication import known_tokens
from accounts.models import Organization, OrganizationMember, Team, User
from releases.health.adoption import forget_known_runs
from releases.health.envelope import known_keys
from releases.health.store import forget_known_ids
from releases.models import Project
from tests.factories import (
    MemberFactory,
    OrganizationFactory,
    ProjectFactory,
    TeamFactory,
    UserFactory,
    create_token,
)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Each test starts with no request counted against any rate limit."""
    ratelimits.clear()


@pytest.fixture(autouse=True)
def _no_answer_cache(settings: Any) -> None:
    """Tests change data through factories, which raise no change stamp: answers are neither
    cached nor tagged unless a test turns it on (tests/test_conditional.py)."""
    settings.RELEASE_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _fresh_known_tokens() -> None:
    """Each test starts with no API token remembered (accounts.authentication)."""
    known_tokens.forget()


@pytest.fixture(autouse=True)
def _fresh_ingest_memory() -> None:
    """Each test starts with no client key, id or adoption run remembered by ingestion
    (SQLite reuses the ids of rows rolled back or flushed by earlier tests)."""
    known_keys.forget()
    forget_known_ids()
    forget_known_runs()


DEFAULT_SCOPES = ["org:read", "project:read", "project:write", "project:releases"]


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(slug="acme")


@pytest.fixture
def team(org: Organization) -> Team:
    return TeamFactory(organization=org, slug="core")


@pytest.fixture
def project(org: Organization, team: Team) -> Project:
    return ProjectFactory(organization=org, slug="backend", name="Backend", teams=[team])


@pytest.fixture
def user() -> User:
    return UserFactory(username="alice", email="alice@example.com")


@pytest.fixture
def member(org: Organization, user: User, team: Team) -> OrganizationMember:
    return MemberFactory(organization=org, user=user, teams=[team])


@pytest.fixture
def token(member: OrganizationMember) -> Callable[..., str]:
    """``token(scopes=[...])``: a user token of the member."""

    def make(scopes: list[str] | None = None) -> str:
        return create_token(user=member.user, scopes=scopes or DEFAULT_SCOPES)

    return make


@pytest.fixture
def api_client(token: Callable[..., str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token()}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()
