"""Hostile query strings on the organization endpoints: a 400, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import ReleaseFactory

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/0/organizations/acme/releases/",
    "/api/0/organizations/acme/releases/a@1/?project=backend",
    "/api/0/projects/acme/backend/releases/",
    "/api/0/organizations/acme/repos/",
]


@pytest.mark.parametrize(
    "params",
    ["environment=%00", "query=%00", "query=release:a%00", "project=a%00", "status=%00",
     "query=release.version:%00", "query=%22a%00%22", "cursor=%00", "x%00=1",
     "environment=prod&environment=%00"],
)  # fmt: skip
def test_null_characters_in_parameters_are_400(api_client, org, project, params):
    ReleaseFactory(organization=org, version="a@1", projects=[project])

    for path in PATHS:
        response = api_client.get(path + ("&" if "?" in path else "?") + params)

        assert response.status_code == 400, (path, response.content)
        assert response.json() == {"detail": "Null characters are not allowed."}


@pytest.mark.parametrize(
    "path",
    ["/api/0/nonexistent/", "/api/0/organizations/acme/releases", "/api/abc/envelope/",
     "/api/0/organizations/acme/releases/a%2Fb/"],
)  # fmt: skip
def test_unknown_api_paths_are_json_404(api_client, org, path):
    response = api_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The requested resource does not exist"}


@pytest.mark.parametrize("extra", [{"HTTP_ACCEPT": "text/html"}, {"QUERY_STRING": "format=api"}])
def test_answers_are_json_whatever_the_client_asks(api_client, org, project, extra):
    ReleaseFactory(organization=org, version="a@1", projects=[project])

    response = api_client.get("/api/0/organizations/acme/releases/a@1/", **extra)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_null_characters_in_a_json_body_are_400(api_client, org, project):
    response = api_client.post(
        "/api/0/organizations/acme/releases/",
        {"version": "x@1", "projects": ["backend\x00"]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Null characters are not allowed."}


@pytest.mark.parametrize("query", ["release.created:>+999999999d", "release.created:<-9999999w",
                                   "release.created:>9999-12-31T23:59:59-23:00"])  # fmt: skip
def test_out_of_range_dates_are_400(api_client, org, project, query):
    response = api_client.get("/api/0/organizations/acme/releases/", {"query": query})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("release.created: Invalid date:")


@pytest.mark.parametrize("cursor", ["999999999999999999999:0:0", "500:0:0", "101:1:0"])
def test_cursor_page_size_is_capped_like_per_page(api_client, org, project, cursor):
    response = api_client.get("/api/0/organizations/acme/releases/", {"cursor": cursor})

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid cursor parameter."}


def test_full_width_digits_are_not_a_page_size(api_client, org, project):
    response = api_client.get("/api/0/organizations/acme/releases/", {"per_page": "\uff11"})

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid per_page parameter."}


@pytest.mark.parametrize("path", PATHS)
def test_options_answers_its_allow_header_never_a_server_error(api_client, org, project, path):
    ReleaseFactory(organization=org, version="a@1", projects=[project])

    response = api_client.options(path)
    get = api_client.get(path)

    # The methods a route serves, and no body: the schema at /api/0/schema/ describes them.
    assert response.status_code == 200, response.content
    assert response.content == b""
    assert response["Allow"] == get["Allow"]
    assert "OPTIONS" in response["Allow"].split(", ")


def test_options_of_the_envelope_endpoint_needs_no_key(anon_client, project):
    response = anon_client.options(f"/api/{project.pk}/envelope/")

    assert response.status_code == 200
    assert response["Allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_unknown_api_paths_are_json_404_for_every_method(api_client, method):
    response = getattr(api_client, method)("/api/0/nonexistent/", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}


def test_details_checks_the_date_window_when_a_project_is_given(api_client, org, project):
    ReleaseFactory(organization=org, version="a@1", projects=[project])
    path = "/api/0/organizations/acme/releases/a@1/"

    bad = api_client.get(path, {"project": project.slug, "statsPeriod": "xx"})
    ignored = api_client.get(path, {"statsPeriod": "xx"})

    assert bad.status_code == 400
    assert bad.json() == {"detail": "Invalid date range: xx"}
    assert ignored.status_code == 200
