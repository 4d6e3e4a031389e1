"""Organization and project endpoints: what each caller sees, fields, errors, query counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import (
    EnvironmentFactory,
    MemberFactory,
    OrganizationFactory,
    ProjectFactory,
    ReleaseFactory,
    ReleaseProjectEnvironmentFactory,
    TeamFactory,
    create_token,
)

pytestmark = pytest.mark.django_db


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def slugs(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["slug"] for item in response.json()]


# --- GET /api/0/organizations/ ----------------------------------------------------------------


def test_organizations_lists_the_users_memberships_newest_first(api_client, member, org):
    newer = OrganizationFactory(slug="globex", date_added=datetime(2030, 1, 1, tzinfo=UTC))
    MemberFactory(organization=newer, user=member.user)
    OrganizationFactory(slug="stranger")

    response = api_client.get("/api/0/organizations/")

    assert slugs(response) == ["globex", "acme"]
    assert 'rel="next"; results="false"' in response["Link"]


def test_organization_item_has_sentrys_fields(api_client, member, org):
    response = api_client.get("/api/0/organizations/")

    assert response.status_code == 200, response.content
    assert response.json() == [
        {
            "id": str(org.pk),
            "slug": "acme",
            "status": {"id": "active", "name": "active"},
            "name": org.name,
            "dateCreated": org.date_added.isoformat().replace("+00:00", "Z"),
            "isEarlyAdopter": False,
            "require2FA": False,
            "avatar": {"avatarType": "letter_avatar", "avatarUuid": None, "avatarUrl": None},
            "links": {"organizationUrl": "http://testserver", "regionUrl": "http://testserver"},
            "hasAuthProvider": False,
            "allowMemberInvite": True,
            "allowMemberProjectCreation": False,
            "allowSuperuserAccess": False,
            "features": ["releases", "release-health"],
        }
    ]


def test_organizations_owner_filter_and_query(api_client, member, org):
    owned = OrganizationFactory(slug="owned", name="Owned Inc")
    MemberFactory(organization=owned, user=member.user, role="owner")

    assert slugs(api_client.get("/api/0/organizations/?owner=1")) == ["owned"]
    assert slugs(api_client.get("/api/0/organizations/?query=ACM")) == ["acme"]
    assert slugs(api_client.get("/api/0/organizations/?query=inc")) == ["owned"]
    response = api_client.get("/api/0/organizations/?owner=maybe")
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid value for owner: expected true or false."}


def test_organizations_of_an_organization_token_is_its_organization(org):
    OrganizationFactory(slug="other")
    client = client_with(create_token(organization=org, scopes=["org:ci"]))

    assert slugs(client.get("/api/0/organizations/")) == ["acme"]


def test_organizations_skips_roles_without_organization_read(member, org):
    billing_org = OrganizationFactory(slug="billing-only")
    MemberFactory(organization=billing_org, user=member.user, role="billing")
    client = client_with(create_token(user=member.user, scopes=["org:read", "org:billing"]))

    assert slugs(client.get("/api/0/organizations/")) == ["acme"]


def test_organizations_needs_an_organization_read_scope(member):
    client = client_with(create_token(user=member.user, scopes=["project:releases"]))

    response = client.get("/api/0/organizations/")

    assert response.status_code == 403


def test_organizations_needs_authentication(anon_client):
    assert anon_client.get("/api/0/organizations/").status_code == 401


def test_organizations_page_costs_the_same_whatever_its_size(api_client, member):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api_client.get("/api/0/organizations/").status_code == 200
        return len(queries)

    api_client.get("/api/0/organizations/")  # records the token's last use, once a minute

    one = count()
    for _ in range(9):
        MemberFactory(organization=OrganizationFactory(), user=member.user)
    assert count() == one


def test_organizations_query_count(api_client, member, django_assert_num_queries):
    api_client.get("/api/0/organizations/")  # records the token's last use, once a minute
    # token, organizations page (a read opens no transaction: no savepoints)
    with django_assert_num_queries(2):
        assert api_client.get("/api/0/organizations/").status_code == 200


# --- GET /api/0/organizations/{org}/ ----------------------------------------------------------


def test_organization_details_by_slug_and_id(api_client, member, org):
    by_slug = api_client.get("/api/0/organizations/acme/")
    by_id = api_client.get(f"/api/0/organizations/{org.pk}/")

    assert by_slug.status_code == 200, by_slug.content
    assert by_slug.json() == by_id.json()
    body = by_slug.json()
    assert body["id"] == str(org.pk)
    assert body["access"] == ["org:read", "project:read", "project:releases"]
    assert body["openMembership"] is False


def test_organization_details_of_another_organization_is_403_and_unknown_404(api_client, member):
    OrganizationFactory(slug="globex")

    assert api_client.get("/api/0/organizations/globex/").status_code == 403
    response = api_client.get("/api/0/organizations/nope/")
    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}


# --- GET /api/0/organizations/{org}/projects/ -------------------------------------------------


def test_organization_projects_lists_accessible_projects_by_slug(api_client, org, team, project):
    ProjectFactory(organization=org, slug="api", teams=[team])
    ProjectFactory(organization=org, slug="vault", teams=[TeamFactory(organization=org)])

    assert slugs(api_client.get("/api/0/organizations/acme/projects/")) == ["api", "backend"]

    org.open_membership = True
    org.save()
    assert slugs(api_client.get("/api/0/organizations/acme/projects/")) == [
        "api",
        "backend",
        "vault",
    ]


def test_organization_project_item_has_sentrys_fields(api_client, org, team, project):
    production = EnvironmentFactory(organization=org, name="production")
    first = datetime(2026, 11, 1, tzinfo=UTC)
    release = ReleaseFactory(organization=org, version="1.0", projects=[project])
    ReleaseProjectEnvironmentFactory(
        release=release, project=project, environment=production, first_seen=first
    )

    response = api_client.get("/api/0/organizations/acme/projects/?query=back")

    assert response.status_code == 200, response.content
    (item,) = response.json()
    assert item["id"] == str(project.pk)
    assert item["slug"] == "backend"
    assert item["isMember"] is True
    assert item["hasAccess"] is True
    assert item["team"] == {"id": str(team.pk), "name": team.name, "slug": "core"}
    assert item["teams"] == [item["team"]]
    assert item["environments"] == ["production"]
    assert item["firstEvent"] == "2026-11-01T00:00:00Z"
    assert item["latestRelease"] == {"version": "1.0"}
    assert item["hasSessions"] is False
    assert item["access"] == ["org:read", "project:read", "project:releases"]


def test_organization_projects_page_costs_the_same_whatever_its_size(api_client, org, team):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api_client.get("/api/0/organizations/acme/projects/").status_code == 200
        return len(queries)

    api_client.get(
        "/api/0/organizations/acme/projects/"
    )  # records the token's last use, once a minute

    ProjectFactory(organization=org, teams=[team])
    one = count()
    ProjectFactory.create_batch(9, organization=org, teams=[team])
    assert count() == one


def test_organization_projects_query_count(api_client, project, django_assert_num_queries):
    api_client.get("/api/0/organizations/acme/projects/")  # records the token's last use
    # token, organization with the caller's membership (one join), projects page (annotated),
    # teams prefetch, environments and first events
    with django_assert_num_queries(5):
        assert api_client.get("/api/0/organizations/acme/projects/").status_code == 200


# --- GET /api/0/projects/ ---------------------------------------------------------------------


def test_projects_lists_accessible_projects_across_organizations(api_client, member, project):
    other = OrganizationFactory(slug="globex", open_membership=True)
    MemberFactory(organization=other, user=member.user)
    ProjectFactory(organization=other, slug="shop", teams=[TeamFactory(organization=other)])
    ProjectFactory(organization=OrganizationFactory(), slug="stranger")
    ProjectFactory(organization=member.organization, slug="vault")

    response = api_client.get("/api/0/projects/")

    assert sorted(slugs(response)) == ["backend", "shop"]
    by_slug = {item["slug"]: item for item in response.json()}
    assert by_slug["shop"]["organization"]["slug"] == "globex"
    assert by_slug["shop"]["isMember"] is False
    assert by_slug["backend"]["isMember"] is True


def test_projects_of_an_organization_token_are_its_organizations(org, project):
    ProjectFactory(organization=org, slug="unteamed")
    ProjectFactory(organization=OrganizationFactory(), slug="stranger")
    client = client_with(create_token(organization=org, scopes=["org:ci"]))

    assert sorted(slugs(client.get("/api/0/projects/"))) == ["backend", "unteamed"]


def test_projects_page_costs_the_same_whatever_its_size(api_client, org, team, member):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api_client.get("/api/0/projects/").status_code == 200
        return len(queries)

    api_client.get("/api/0/projects/")  # records the token's last use, once a minute

    ProjectFactory(organization=org, teams=[team])
    one = count()
    ProjectFactory.create_batch(9, organization=org, teams=[team])
    assert count() == one


def test_projects_query_count(api_client, project, django_assert_num_queries):
    api_client.get("/api/0/projects/")  # records the token's last use, once a minute
    # token, memberships with organizations, projects page with organizations,
    # teams prefetch, environments and first events
    with django_assert_num_queries(5):
        assert api_client.get("/api/0/projects/").status_code == 200
