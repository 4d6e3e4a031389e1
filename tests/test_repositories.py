"""GET and POST ``/api/0/organizations/{org}/repos/``."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Organization, OrganizationMember
from releases.models import Repository
from tests.factories import OrganizationFactory, RepositoryFactory, create_token

pytestmark = pytest.mark.django_db

URL = "/api/0/organizations/acme/repos/"


def test_list_repositories_by_name_with_string_ids_and_providers(
    api_client: APIClient, org: Organization, member: OrganizationMember
):
    github = RepositoryFactory(organization=org, name="acme/web", url="https://github.com/acme/web")
    plain = RepositoryFactory(organization=org, name="acme/api", provider=None, url=None)
    RepositoryFactory(organization=org, name="acme/gone", status="pending_deletion")
    RepositoryFactory(name="acme/elsewhere")  # another organization's

    response = api_client.get(URL)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == [
        {
            "id": str(plain.pk),
            "name": "acme/api",
            "url": None,
            "provider": {"id": "unknown", "name": "Unknown Provider"},
            "status": "active",
            "dateCreated": response.json()[0]["dateCreated"],
            "integrationId": None,
            "externalSlug": None,
            "externalId": None,
        },
        {
            "id": str(github.pk),
            "name": "acme/web",
            "url": "https://github.com/acme/web",
            "provider": {"id": "integrations:github", "name": "GitHub"},
            "status": "active",
            "dateCreated": response.json()[1]["dateCreated"],
            "integrationId": None,
            "externalSlug": None,
            "externalId": None,
        },
    ]
    assert response.json()[0]["dateCreated"].endswith("Z")


def test_list_filters_by_status_and_query(api_client: APIClient, org: Organization):
    RepositoryFactory(organization=org, name="acme/web")
    RepositoryFactory(organization=org, name="acme/gone", status="pending_deletion")

    deleted = api_client.get(URL, {"status": "deleted"}).json()
    everything = api_client.get(URL, {"status": ""}).json()
    matching = api_client.get(URL, {"query": "WE"}).json()
    bad = api_client.get(URL, {"status": "nope"})

    assert [r["name"] for r in deleted] == ["acme/gone"]
    assert [r["name"] for r in everything] == ["acme/gone", "acme/web"]
    assert [r["name"] for r in matching] == ["acme/web"]
    assert bad.status_code == 400
    assert bad.json() == {"detail": "invalid value for status"}


def test_list_pages_with_a_quoted_link_header(api_client: APIClient, org: Organization):
    Repository.objects.bulk_create(Repository(organization=org, name=f"r{n:02}") for n in range(5))

    first = api_client.get(URL, {"per_page": "2", "cursor": ""})
    second = api_client.get(URL, {"per_page": "2", "cursor": "2:1:0"})
    last = api_client.get(URL, {"per_page": "2", "cursor": "2:2:0"})

    assert [r["name"] for r in first.json()] == ["r00", "r01"]
    base = "http://testserver/api/0/organizations/acme/repos/?per_page=2"
    assert first["Link"] == (
        f'<{base}&cursor=2:-1:1>; rel="previous"; results="false"; cursor="2:-1:1", '
        f'<{base}&cursor=2:1:0>; rel="next"; results="true"; cursor="2:1:0"'
    )
    assert [r["name"] for r in second.json()] == ["r02", "r03"]
    assert 'rel="previous"; results="true"; cursor="2:0:1"' in second["Link"]
    assert [r["name"] for r in last.json()] == ["r04"]
    assert 'rel="next"; results="false"; cursor="2:3:0"' in last["Link"]


def test_link_header_without_parameters_keeps_the_literal_question_ampersand(
    api_client: APIClient, org: Organization
):
    response = api_client.get(URL)

    assert response["Link"].startswith(
        "<http://testserver/api/0/organizations/acme/repos/?&cursor=100:-1:1>"
    )


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"per_page": "abc"}, "Invalid per_page parameter."),
        ({"per_page": "0"}, "Invalid per_page parameter."),
        ({"per_page": "101"}, "Invalid per_page value. Cannot exceed 100."),
        ({"cursor": "abc"}, "Invalid cursor parameter."),
        ({"cursor": "1:2"}, "Invalid cursor parameter."),
        ({"cursor": "1:x:0"}, "Invalid cursor parameter."),
        ({"cursor": "-1:0:0"}, "Invalid cursor parameter."),
        ({"cursor": "100:-1:1"}, "Pagination offset cannot be negative"),
    ],
)
def test_bad_pagination_parameters_are_400(
    api_client: APIClient, org: Organization, params: dict[str, str], detail: str
):
    response = api_client.get(URL, params)

    assert response.status_code == 400
    assert response.json() == {"detail": detail}


def test_repository_list_costs_a_constant_number_of_queries(
    api_client: APIClient, org: Organization, django_assert_num_queries
):
    RepositoryFactory(organization=org)
    api_client.get(URL)  # records the token's last use, once a minute
    with CaptureQueriesContext(connection) as one:
        api_client.get(URL)
    RepositoryFactory.create_batch(9, organization=org)

    with CaptureQueriesContext(connection) as ten:
        response = api_client.get(URL)

    assert len(response.json()) == 10
    assert len(one) == len(ten)
    # token, organization with the caller's membership, repositories page (a read opens no
    # transaction: no savepoints)
    with django_assert_num_queries(3):
        api_client.get(URL)


@pytest.fixture
def admin_client(member: OrganizationMember) -> APIClient:
    member.role = "admin"
    member.save()
    client = APIClient()
    secret = create_token(user=member.user, scopes=["org:read", "org:integrations"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_create_repository(admin_client: APIClient, org: Organization):
    response = admin_client.post(
        URL,
        {
            "name": "acme/app",
            "url": "https://github.com/acme/app",
            "provider": "integrations:github",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    repo = Repository.objects.get(organization=org, name="acme/app")
    assert response.json()["id"] == str(repo.pk)
    assert response.json()["provider"] == {"id": "integrations:github", "name": "GitHub"}


def test_create_repository_with_a_taken_name_is_409(admin_client: APIClient, org):
    RepositoryFactory(organization=org, name="acme/app")

    response = admin_client.post(URL, {"name": "acme/app"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "A repository with that name already exists"}


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x", "url": "nope"}, {"name": "x", "provider": "svn"}, []],
)
def test_create_repository_validation(admin_client: APIClient, body: object):
    response = admin_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert not Repository.objects.exists()


def test_members_cannot_create_repositories(api_client: APIClient, org: Organization):
    response = api_client.post(URL, {"name": "acme/app"}, format="json")

    assert response.status_code == 403
    assert not Repository.objects.exists()


def test_repositories_of_another_organization_are_not_listed_to_its_tokens(org: Organization):
    RepositoryFactory(organization=org, name="acme/app")
    other = OrganizationFactory(slug="other")
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(organization=other, scopes=['org:ci'])}"
    )

    assert client.get(URL).status_code == 403
    assert client.get("/api/0/organizations/other/repos/").json() == []
