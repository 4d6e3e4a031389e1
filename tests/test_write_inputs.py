"""Hostile input on every write endpoint: always a 4xx, never a 500, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from releases.models import (
    Commit,
    Deploy,
    Project,
    Release,
    ReleaseCommit,
    ReleaseHeadCommit,
    Repository,
)
from tests.factories import ReleaseFactory

pytestmark = pytest.mark.django_db

RELEASES = "/api/0/organizations/acme/releases/"
NASTY: list[Any] = [None, 1.5, True, [], {}, "\x00", "é" * 300, [None], [[1]], {"a": 1}, 2**70]
BODIES: list[tuple[str, str, str]] = [
    ("post", RELEASES, "version"),
    ("post", RELEASES, "projects"),
    ("post", RELEASES, "owner"),
    ("post", RELEASES, "status"),
    ("put", f"{RELEASES}v/", "ref"),
    ("put", f"{RELEASES}v/", "url"),
    ("put", f"{RELEASES}v/", "dateReleased"),
    ("put", f"{RELEASES}v/", "commits"),
    ("put", f"{RELEASES}v/", "refs"),
    ("put", f"{RELEASES}v/", "status"),
    ("put", f"{RELEASES}v/", "headCommits"),
    ("post", f"{RELEASES}v/deploys/", "environment"),
    ("post", f"{RELEASES}v/deploys/", "url"),
    ("post", f"{RELEASES}v/deploys/", "dateFinished"),
    ("post", f"{RELEASES}v/deploys/", "projects"),
]
ITEMS = [("commits", "id"), ("commits", "timestamp"), ("commits", "patch_set"), ("refs", "commit")]


def snapshot() -> tuple[int, ...]:
    models = (Release, Commit, ReleaseCommit, ReleaseHeadCommit, Deploy, Repository)
    return tuple(model.objects.count() for model in models)


@pytest.fixture
def client(api_client: APIClient, project: Project) -> APIClient:
    ReleaseFactory(organization=project.organization, version="v", projects=[project])
    api_client.raise_request_exception = False
    return api_client


def send(client: APIClient, method: str, url: str, body: dict[str, Any]) -> int:
    """The status of one request; a rejected one must leave the database as it was."""
    before = snapshot()
    code: int = getattr(client, method)(url, body, format="json").status_code
    assert code < 500, (url, body)
    if code >= 400:
        assert snapshot() == before, (url, body)
    return code


@pytest.mark.parametrize(("method", "url", "field"), BODIES)
def test_odd_field_values_never_fail_the_server(
    client: APIClient, method: str, url: str, field: str
):
    base: dict[str, Any] = {"version": "new", "projects": ["backend"], "environment": "prod"}

    codes = [send(client, method, url, {**base, field: value}) for value in NASTY]

    # A NUL byte, an overlong text or a nested object is never accepted in these fields.
    assert all(code == 400 for code in codes[5:10]), codes


@pytest.mark.parametrize(("key", "field"), ITEMS)
def test_odd_list_items_never_fail_the_server(client: APIClient, key: str, field: str):
    item = {"id": "abc", "repository": "r", "commit": "abc"}

    codes = [
        send(client, "put", f"{RELEASES}v/", {key: [{**item, field: value}]}) for value in NASTY
    ]

    assert codes[5] == 400, codes  # NUL byte


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"null", b"{not json", b"\xff\xfe"])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", RELEASES),
        ("put", f"{RELEASES}v/"),
        ("post", f"{RELEASES}v/deploys/"),
        ("post", "/api/0/projects/acme/backend/releases/"),
    ],
)
def test_bodies_that_are_not_objects_are_400(client: APIClient, method: str, url: str, raw: bytes):
    response = getattr(client, method)(url, raw, content_type="application/json")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        f"{RELEASES}%00/",
        f"{RELEASES}a%00b/commits/",
        f"{RELEASES}%00/deploys/",
        "/api/0/projects/acme/%00/releases/",
        "/api/0/organizations/%00/repos/",
    ],
)
def test_nul_in_the_path_is_404(client: APIClient, path: str):
    assert client.get(path).status_code == 404
    assert client.put(path, {}, format="json").status_code == 404
    assert client.delete(path).status_code == 404


@pytest.mark.parametrize(
    "query",
    ["cursor=99999999999999999999:1:0", "cursor=100:99999999999999999:0", "query=%00"],
)
def test_out_of_range_list_parameters_are_400(client: APIClient, query: str):
    for url in ["/api/0/organizations/acme/repos/", f"{RELEASES}v/commits/"]:
        if "query" in query and "commits" in url:
            continue
        assert client.get(f"{url}?{query}").status_code == 400
