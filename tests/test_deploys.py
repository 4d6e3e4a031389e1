"""POST and GET ``…/releases/{version}/deploys/``: validation, counters and the list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization
from releases.models import Deploy, Environment, Project, Release
from tests.factories import (
    DeployFactory,
    EnvironmentFactory,
    OrganizationFactory,
    ProjectFactory,
    ReleaseFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/0/organizations/acme/releases/app@1.0/deploys/"


@pytest.fixture
def release(project: Project) -> Release:
    return ReleaseFactory(organization=project.organization, version="app@1.0", projects=[project])


def test_create_deploy_defaults_date_finished_to_now(api_client: APIClient, release: Release):
    before = timezone.now()

    response = api_client.post(
        URL, {"environment": "production", "name": None, "url": None}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    deploy = Deploy.objects.get()
    assert body == {
        "id": str(deploy.pk),
        "environment": "production",
        "dateStarted": None,
        "dateFinished": body["dateFinished"],
        "name": None,
        "url": None,
    }
    assert body["dateFinished"].endswith("Z")
    assert deploy.date_finished >= before
    release.refresh_from_db()
    assert (release.total_deploys, release.last_deploy_id) == (1, deploy.pk)


def test_create_deploy_with_every_field_updates_the_release(api_client, release):
    api_client.post(URL, {"environment": "staging"}, format="json")

    response = api_client.post(
        URL,
        {
            "environment": "production",
            "name": "Deploy 2",
            "url": "https://ci.example.com/2",
            "dateStarted": "2024-05-21T11:00:00Z",
            "dateFinished": "2024-05-21T11:05:00.123456789Z",
            "projects": ["backend"],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["dateFinished"] == "2024-05-21T11:05:00.123456Z"
    details = api_client.get("/api/0/organizations/acme/releases/app@1.0/").json()
    assert details["deployCount"] == 2
    # The deploy recorded last, as in Sentry, even though staging finished later.
    assert details["lastDeploy"]["environment"] == "production"
    assert Environment.objects.filter(organization=release.organization).count() == 2


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"environment": ["This field is required."]}),
        ({"environment": ""}, {"environment": ["This field may not be blank."]}),
        ({"environment": None}, {"environment": ["This field may not be null."]}),
        ({"environment": "a/b"}, {"environment": ["Invalid value for environment"]}),
        ({"environment": "a\nb"}, {"environment": ["Invalid value for environment"]}),
        (
            {"environment": "e" * 65},
            {"environment": ["Ensure this field has no more than 64 characters."]},
        ),
        ({"environment": "prod", "url": "https://ci/1"}, {"url": ["Enter a valid URL."]}),
        ({"environment": "prod", "name": "n" * 65}, None),
        ({"environment": "prod", "dateFinished": "later"}, None),
        (
            {"environment": "prod", "projects": ["web"]},
            {"projects": ["Invalid project ids or slugs"]},
        ),
        ({"environment": "prod", "projects": "backend"}, None),
    ],
)
def test_create_deploy_validation(
    api_client: APIClient, release: Release, body: dict[str, Any], errors: dict[str, Any] | None
):
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    if errors is not None:
        assert response.json() == errors
    assert not Deploy.objects.exists()
    assert not Environment.objects.exists()


def test_deploy_on_an_unknown_or_hidden_release_is_404(api_client: APIClient, org: Organization):
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    ReleaseFactory(organization=org, version="hidden", projects=[hidden])
    base = "/api/0/organizations/acme/releases/"

    assert api_client.post(f"{base}nope/deploys/", {"environment": "p"}).status_code == 404
    assert api_client.post(f"{base}hidden/deploys/", {"environment": "p"}).status_code == 404
    assert api_client.get(f"{base}hidden/deploys/").status_code == 404
    assert not Deploy.objects.exists()


def test_deploy_on_another_organizations_release_is_404(api_client: APIClient, project):
    foreign = ProjectFactory(organization=OrganizationFactory(slug="other"))
    ReleaseFactory(organization=foreign.organization, version="app@1.0", projects=[foreign])

    response = api_client.post(URL, {"environment": "p"}, format="json")

    assert response.status_code == 404


def test_create_deploy_needs_a_write_scope(token: Callable[..., str], release: Release):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token(['project:read'])}")

    assert client.post(URL, {"environment": "p"}, format="json").status_code == 403
    assert client.get(URL).status_code == 200


def test_list_shows_the_latest_deploy_per_environment_newest_first(api_client, release):
    now = timezone.now()
    production = EnvironmentFactory(organization=release.organization, name="production")
    staging = EnvironmentFactory(organization=release.organization, name="staging")
    DeployFactory(release=release, environment=production, date_finished=now - timedelta(3))
    latest_prod = DeployFactory(
        release=release, environment=production, date_finished=now - timedelta(1)
    )
    latest_staging = DeployFactory(
        release=release, environment=staging, date_finished=now - timedelta(2)
    )
    DeployFactory(environment__name="production")  # another release

    response = api_client.get(URL)

    assert response.status_code == 200
    assert [d["id"] for d in response.json()] == [str(latest_prod.pk), str(latest_staging.pk)]
    assert all(d["dateFinished"] for d in response.json())


def test_deploy_list_costs_a_constant_number_of_queries(
    api_client: APIClient, release: Release, django_assert_num_queries
):
    DeployFactory(release=release, environment__name="env-0")
    api_client.get(URL)  # records the token's last use, once a minute
    with CaptureQueriesContext(connection) as one:
        api_client.get(URL)
    for n in range(1, 10):
        DeployFactory(release=release, environment__name=f"env-{n}")

    with CaptureQueriesContext(connection) as ten:
        response = api_client.get(URL)

    assert len(response.json()) == 10
    assert len(one) == len(ten)
    # token, organization with the caller's membership, release (with whether the caller sees
    # one of its projects), deploys page with environments (a read opens no transaction: no
    # savepoints)
    with django_assert_num_queries(4):
        api_client.get(URL)


def test_a_deploy_makes_the_release_known_in_its_environment(api_client, org, project):
    ReleaseFactory(organization=org, version="a@1", projects=[project])

    deployed = api_client.post(
        "/api/0/organizations/acme/releases/a@1/deploys/",
        {"environment": "production"},
        format="json",
    )
    listed = api_client.get("/api/0/organizations/acme/releases/?environment=production")
    stages = api_client.get("/api/0/organizations/acme/releases/a@1/?adoptionStages=1")

    assert deployed.status_code == 201, deployed.content
    assert [r["version"] for r in listed.json()] == ["a@1"]
    assert stages.json()["adoptionStages"] == {
        project.slug: {"stage": "low_adoption", "adopted": None, "unadopted": None}
    }


def test_last_deploy_is_the_one_recorded_last(api_client, org, project):
    ReleaseFactory(organization=org, version="a@1", projects=[project])
    path = "/api/0/organizations/acme/releases/a@1/deploys/"
    api_client.post(path, {"environment": "production"}, format="json")

    backdated = api_client.post(
        path,
        {"environment": "staging", "dateFinished": "2020-01-01T00:00:00Z"},
        format="json",
    )

    release = api_client.get("/api/0/organizations/acme/releases/a@1/").json()
    assert (release["deployCount"], release["lastDeploy"]["id"]) == (2, backdated.json()["id"])
