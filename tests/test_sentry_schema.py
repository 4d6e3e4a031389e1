"""Every route we serve answers in the shape Sentry's published OpenAPI schema describes.

The schemas are extracted from getsentry/sentry-api-schema's ``openapi-derefed.json`` (commit
named in each ``tests/data/sentry_schema/*.json``; ``scripts/extract_sentry_schema.py``
regenerates them). OpenAPI 3.0's ``nullable`` is turned into JSON Schema's ``null`` type, and
formats are not checked. Where we differ on purpose, docs/decisions.md §10 says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.envelopes import send_sessions, session
from tests.factories import (
    CommitFactory,
    DeployFactory,
    EnvironmentFactory,
    ReleaseFactory,
    RepositoryFactory,
)

pytestmark = pytest.mark.django_db

SCHEMAS = Path(__file__).parent / "data" / "sentry_schema"
ORG = "/api/0/organizations/acme"


def load(operation_id: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{operation_id}.json").read_text())


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: ``nullable: true`` becomes a ``null`` alternative."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: to_json_schema(value)
        for key, value in node.items()
        if key not in ("nullable", "format", "example", "examples")
    }
    if node.get("nullable"):
        if "type" in converted:
            kinds = (
                converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
            )
            converted["type"] = [*kinds, "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


# Deliberate differences (docs/decisions.md §10): properties we may send as null where the
# schema types them as non-null, as dotted paths under the release object.
RELEASE_OPERATIONS = (
    "listOrganizationReleases",
    "getOrganizationRelease",
    "createOrganizationRelease",
    "updateOrganizationRelease",
    "listProjectReleases",
)
NULLABLE: dict[str, tuple[str, ...]] = dict.fromkeys(RELEASE_OPERATIONS, ("lastDeploy.name",))


def allow_null(schema: dict[str, Any], path: str) -> None:
    node = schema.get("items", schema)
    for name in path.split("."):
        node = node["properties"][name]
    node["nullable"] = True


def assert_matches(operation_id: str, response: Any, status: int = 200) -> None:
    data = load(operation_id)
    assert data["commit"], "each schema names the sentry-api-schema commit it came from"
    assert response.status_code == status, response.content
    body = response.json()
    if isinstance(body, list):
        assert body, "validate a non-empty list"
    schema = data["schema"]
    for path in NULLABLE.get(operation_id, ()):
        allow_null(schema, path)
    jsonschema.validate(body, to_json_schema(schema))


@pytest.fixture
def world(org, project, member):
    """One release with a commit, a deploy, a repository and sessions."""
    production = EnvironmentFactory(organization=org, name="production")
    repository = RepositoryFactory(
        organization=org, name="acme/app", provider="integrations:github"
    )
    release = ReleaseFactory(organization=org, version="1.0", projects=[project], owner=member.user)
    commit = CommitFactory(organization=org, repository=repository, key="a" * 40)
    release.release_commits.create(commit=commit, order=0)
    DeployFactory(release=release, environment=production)
    return release


def test_organization_list(api_client: APIClient, world):
    assert_matches("listOrganizations", api_client.get("/api/0/organizations/"))


def test_organization_details(api_client: APIClient, world):
    assert_matches("getOrganization", api_client.get(f"{ORG}/"))


def test_organization_projects(api_client: APIClient, world):
    assert_matches("listOrganizationProjects", api_client.get(f"{ORG}/projects/"))


def test_organization_sessions(api_client: APIClient, project, world):
    send_sessions(api_client, project, session(release="1.0", started=timezone.now()))
    response = api_client.get(
        f"{ORG}/sessions/?field=sum(session)&field=crash_free_rate(user)&groupBy=project"
        "&groupBy=release&statsPeriod=24h"
    )

    assert_matches("getOrganizationSessions", response)


def test_release_list(api_client: APIClient, world):
    assert_matches("listOrganizationReleases", api_client.get(f"{ORG}/releases/?health=1"))


def test_release_details(api_client: APIClient, world, project):
    response = api_client.get(f"{ORG}/releases/1.0/?health=1&project={project.pk}")

    assert_matches("getOrganizationRelease", response)


def test_release_create(api_client: APIClient, project):
    response = api_client.post(
        f"{ORG}/releases/", {"version": "2.0", "projects": [project.slug]}, format="json"
    )

    assert_matches("createOrganizationRelease", response, 201)


def test_release_update(api_client: APIClient, world):
    response = api_client.put(f"{ORG}/releases/1.0/", {"ref": "main"}, format="json")

    assert_matches("updateOrganizationRelease", response)


def test_release_commits(api_client: APIClient, world):
    assert_matches("listOrganizationReleaseCommits", api_client.get(f"{ORG}/releases/1.0/commits/"))


def test_release_deploys(api_client: APIClient, world):
    assert_matches("listOrganizationReleaseDeploys", api_client.get(f"{ORG}/releases/1.0/deploys/"))


def test_deploy_create(api_client: APIClient, world):
    response = api_client.post(
        f"{ORG}/releases/1.0/deploys/", {"environment": "staging"}, format="json"
    )

    assert_matches("createOrganizationReleaseDeploy", response, 201)


def test_repositories(api_client: APIClient, world):
    assert_matches("listOrganizationRepos", api_client.get(f"{ORG}/repos/"))


def test_project_releases(api_client: APIClient, world):
    assert_matches("listProjectReleases", api_client.get("/api/0/projects/acme/backend/releases/"))
