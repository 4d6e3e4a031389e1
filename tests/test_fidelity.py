"""Fidelity to Sentry: the project route's environment filter and order, repositories by
integration, and the user object's ``isSuspended``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from releases.models import Project
from tests.factories import (
    CommitFactory,
    EnvironmentFactory,
    ReleaseFactory,
    ReleaseProjectEnvironmentFactory,
    RepositoryFactory,
)

pytestmark = pytest.mark.django_db

PROJECT_URL = "/api/0/projects/acme/backend/releases/"


def versions(client: APIClient, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return [r["version"] for r in response.json()]


def test_project_release_list_honours_environment(api_client: APIClient, org, project: Project):
    production = EnvironmentFactory(organization=org, name="production")
    EnvironmentFactory(organization=org, name="staging")
    seen = ReleaseFactory(organization=org, version="seen", projects=[project])
    ReleaseFactory(organization=org, version="unseen", projects=[project])
    ReleaseProjectEnvironmentFactory(release=seen, project=project, environment=production)

    assert versions(api_client, PROJECT_URL + "?environment=production") == ["seen"]
    assert versions(api_client, PROJECT_URL + "?environment=staging") == []
    assert versions(api_client, PROJECT_URL + "?environment=nowhere") == []


def test_project_release_list_sorts_by_date_released_else_date_created(
    api_client: APIClient, org, project: Project
):
    ReleaseFactory(
        organization=org,
        version="created-late-released-early",
        projects=[project],
        date_added=datetime(2026, 3, 1, tzinfo=UTC),
        date_released=datetime(2026, 1, 1, tzinfo=UTC),
    )
    ReleaseFactory(
        organization=org,
        version="unreleased",
        projects=[project],
        date_added=datetime(2026, 2, 1, tzinfo=UTC),
    )

    assert versions(api_client, PROJECT_URL) == ["unreleased", "created-late-released-early"]


def test_repository_list_honours_integration_id(api_client: APIClient, org):
    RepositoryFactory(organization=org, name="acme/app", integration_id="7")
    RepositoryFactory(organization=org, name="acme/lib", integration_id="8")

    response = api_client.get("/api/0/organizations/acme/repos/?integration_id=7")

    assert response.status_code == 200, response.content
    assert [r["name"] for r in response.json()] == ["acme/app"]


def test_user_objects_have_is_suspended(api_client: APIClient, org, project, member):
    ReleaseFactory(organization=org, version="1.0", projects=[project], owner=member.user)

    response = api_client.get("/api/0/organizations/acme/releases/1.0/")

    assert response.status_code == 200, response.content
    assert response.json()["owner"]["isSuspended"] is False


def test_release_commits_list_their_releases(api_client: APIClient, org, project):
    repository = RepositoryFactory(organization=org, name="acme/app")
    commit = CommitFactory(organization=org, repository=repository, key="a" * 40)
    first = ReleaseFactory(organization=org, version="1.0", projects=[project])
    second = ReleaseFactory(organization=org, version="1.1", projects=[project])
    for order, release in enumerate([first, second]):
        release.release_commits.create(commit=commit, order=order)

    response = api_client.get("/api/0/organizations/acme/releases/1.1/commits/")

    assert response.status_code == 200, response.content
    (item,) = response.json()
    assert [r["version"] for r in item["releases"]] == ["1.0", "1.1"]
