"""GET /api/0/organizations/{org}/releases/{version}/: the documented example and its rules."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import create_token

pytestmark = pytest.mark.django_db

EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "shared/reference/release-details.example.json"
EXAMPLE_URL = "/api/0/organizations/sentry/releases/control@abc123/?health=1&adoptionStages=1"

# Where our answer may differ from the hand-written example, and why.
EXPECTED_DIFFERENCES = {
    ".id",  # database id
    ".versionInfo.description",  # the real parser gives "control@abc123" (release-api.md §2.2)
    ".versionInfo.buildHash",  # "abc123" is no hash length under the parser: null
    ".lastCommit.pullRequest.repository.url",  # the example shows two urls for one repository
    ".lastDeploy.id",  # a string id (DECISIONS.md)
    ".authors[0].id",  # a string id (DECISIONS.md)
}
VOLATILE = {"id", "avatarUrl", "dateCreated"}


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """``{path: leaf}`` for every leaf; dict and list shapes become part of the path."""
    if isinstance(value, dict):
        items = {}
        for key, child in value.items():
            items.update(flatten(child, f"{path}.{key}"))
        return items or {path: {}}
    if isinstance(value, list) and path.endswith(".24h"):
        return {path: "stats"}  # bucket layout follows healthStatsPeriod (DECISIONS.md)
    if isinstance(value, list):
        items = {}
        for index, child in enumerate(value):
            items.update(flatten(child, f"{path}[{index}]"))
        return items or {path: []}
    return {path: value}


@pytest.fixture
def seeded_client() -> APIClient:
    call_command("seed", stdout=io.StringIO())
    raj = User.objects.get(username="rajraspberry")
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=raj, scopes=['project:read'])}"
    )
    return client


def test_example_response_matches_documented_example_key_for_key(seeded_client: APIClient):
    example = json.loads(EXAMPLE_PATH.read_text())

    response = seeded_client.get(EXAMPLE_URL)

    assert response.status_code == 200, response.content
    ours, theirs = flatten(response.json()), flatten(example)
    missing = sorted(set(theirs) - set(ours))
    assert missing == []
    differing = {
        path
        for path, value in theirs.items()
        if ours[path] != value and path.rsplit(".", 1)[-1] not in VOLATILE
    }
    ids = {p for p in differing if p.endswith(".id") and str(ours[p]) != str(theirs[p])}
    emails = {p for p in differing if "emails[" in p}
    assert differing - ids - emails - EXPECTED_DIFFERENCES == set()


def test_example_response_has_string_ids_and_hourly_stats(seeded_client: APIClient):
    body = seeded_client.get(EXAMPLE_URL).json()

    assert isinstance(body["id"], int)
    assert isinstance(body["lastDeploy"]["id"], str)
    assert isinstance(body["authors"][0]["id"], str)
    assert isinstance(body["lastCommit"]["repository"]["id"], str)
    assert body["projects"][0]["id"] > 0
    stats = body["projects"][0]["healthData"]["stats"]["24h"]
    assert len(stats) == 24
    assert all(b[0] - a[0] == 3600 for a, b in itertools.pairwise(stats))
    assert body["versionInfo"] == {
        "package": "control",
        "version": {"raw": "abc123"},
        "description": "control@abc123",
        "buildHash": None,
    }
