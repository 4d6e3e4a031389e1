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
