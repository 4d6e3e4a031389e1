"""Legacy project-scoped routes, the minimal release lists and ``GET /api/0/``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, OrganizationMember, Team
from releases.models import Project, Release, ReleaseStatus
from tests.factories import (
    OrganizationFactory,
    ProjectFactory,
    ReleaseFactory,
    TeamFactory,
    create_token,
)

pytestmark = pytest.mark.django_db

ORG_URL = "/api/0/organizations/acme/releases/"
PROJECT_URL = "/api/0/projects/acme/backend/releases/"


@pytest.fixture
def web(org: Organization, team: Team) -> Project:
    return ProjectFactory(organization=org, slug="web", teams=[team])


def test_org_list_shows_open_releases_of_member_projects_newest_first(
    api_client: APIClient, org: Organization, project: Project, web: Project
):
    now = timezone.now()
    ReleaseFactory(
        organization=org, version="old", projects=[project], date_added=now - timedelta(2)
    )
    ReleaseFactory(organization=org, version="new", projects=[web], date_added=now)
    ReleaseFactory(
        organization=org, version="both", projects=[project, web], date_added=now - timedelta(1)
    )
    ReleaseFactory(
        organization=org, version="archived", projects=[project], status=ReleaseStatus.ARCHIVED
    )
    ReleaseFactory(organization=org, version="no-projects")
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    ReleaseFactory(organization=org, version="other-team", projects=[hidden])
    org.open_membership = True  # does not widen the default list (docs/api.md §6.3)
    org.save()

    response = api_client.get(ORG_URL)

    assert response.status_code == 200, response.content
    assert [r["version"] for r in response.json()] == ["new", "both", "old"]
    assert all(r["newGroups"] == 0 and isinstance(r["projects"], list) for r in response.json())


def test_org_list_status_parameter(api_client: APIClient, org: Organization, project: Project):
    ReleaseFactory(organization=org, version="open", projects=[project])
    ReleaseFactory(
        organization=org, version="gone", projects=[project], status=ReleaseStatus.ARCHIVED
    )

    archived = api_client.get(ORG_URL, {"status": "archived"})
    both = api_client.get(ORG_URL, {"status": ""})
    bad = api_client.get(ORG_URL, {"status": "nope"})

    assert [r["version"] for r in archived.json()] == ["gone"]
    assert sorted(r["version"] for r in both.json()) == ["gone", "open"]
    assert bad.status_code == 400


def test_project_list_shows_only_that_projects_releases(
    api_client: APIClient, org: Organization, project: Project, web: Project
):
    ReleaseFactory(organization=org, version="backend", projects=[project])
    ReleaseFactory(organization=org, version="web", projects=[web])

    response = api_client.get(PROJECT_URL)

    assert response.status_code == 200
    assert [r["version"] for r in response.json()] == ["backend"]


def test_project_routes_for_a_hidden_or_foreign_project_are_404(
    api_client: APIClient, org: Organization, project: Project
):
    ProjectFactory(organization=org, slug="hidden", teams=[TeamFactory(organization=org)])
    ProjectFactory(organization=OrganizationFactory(slug="other"), slug="theirs")

    hidden = api_client.get("/api/0/projects/acme/hidden/releases/")
    missing = api_client.post("/api/0/projects/acme/nope/releases/", {"version": "1"})
    foreign = api_client.get("/api/0/projects/other/theirs/releases/")

    assert hidden.status_code == 404
    assert missing.status_code == 404
    assert foreign.status_code == 403
    assert not Release.objects.exists()


def test_project_create_links_the_project_of_the_url(api_client: APIClient, project, web):
    created = api_client.post(PROJECT_URL, {"version": "1.0", "ref": "main"}, format="json")
    again = api_client.post(PROJECT_URL, {"version": "1.0", "projects": ["web"]}, format="json")
    on_web = api_client.post(
        "/api/0/projects/acme/web/releases/", {"version": "1.0"}, format="json"
    )

    assert created.status_code == 201, created.content
    assert created.json()["ref"] == "main"
    assert again.status_code == 208
    assert on_web.status_code == 201
    assert set(Release.objects.get(version="1.0").projects.all()) == {project, web}


def test_project_create_validates_the_version(api_client: APIClient, project: Project):
    response = api_client.post(PROJECT_URL, {"version": "latest"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"version": ["Release with name latest is not allowed"]}


def test_project_details_get_put_and_delete(
    api_client: APIClient, org: Organization, project: Project, web: Project
):
    ReleaseFactory(organization=org, version="1.0", projects=[project])
    ReleaseFactory(organization=org, version="web-only", projects=[web])

    got = api_client.get(f"{PROJECT_URL}1.0/")
    other = api_client.get(f"{PROJECT_URL}web-only/")
    put = api_client.put(f"{PROJECT_URL}1.0/", {"dateReleased": "2024-01-01T00:00:00Z"})
    deleted = api_client.delete(f"{PROJECT_URL}1.0/")

    assert got.status_code == 200
    assert got.json()["version"] == "1.0"
    assert other.status_code == 404
    assert put.status_code == 200
    assert put.json()["dateReleased"] == "2024-01-01T00:00:00Z"
    assert deleted.status_code == 204
    assert list(Release.objects.values_list("version", flat=True)) == ["web-only"]


def test_api_root_describes_the_token(member: OrganizationMember, anon_client: APIClient):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=member.user, scopes=['project:read'])}"
    )

    response = client.get("/api/0/")
    anonymous = anon_client.get("/api/0/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["auth"] == {"scopes": ["project:read"]}
    assert body["user"]["id"] == str(member.user.pk)
    assert body["user"]["email"] == "alice@example.com"
    assert anonymous.status_code == 200
    assert anonymous.json()["user"] is None


def test_api_paths_without_a_trailing_slash_are_404_not_redirects(api_client, project):
    response = api_client.get("/api/0/organizations/acme/releases")

    assert response.status_code == 404
