"""Management commands: seed and create_token."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken, hash_token
from releases.models import Release

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


def test_seed_is_idempotent():
    run("seed")
    first = row_counts()

    run("seed")

    assert row_counts() == first
    assert Release.objects.filter(organization__slug="sentry").count() >= 9


def test_seed_reproduces_example_release():
    run("seed")

    release = Release.objects.get(version="control@abc123")
    assert release.commit_count == 2
    assert release.last_commit.key == "xyz123"
    assert release.total_deploys == 1
    assert release.last_deploy.name == "control@abc123 to canary-test-"
    assert [p.slug for p in release.projects.all()] == ["sentry"]


def test_create_token_for_user_prints_only_the_token_last():
    run("seed")

    output = run(
        "create_token", "--user", "rajraspberry", "--scopes", "project:read project:releases"
    )

    secret = output.strip().splitlines()[-1]
    token = ApiToken.objects.get(token_hash=hash_token(secret))
    assert token.kind == ApiToken.Kind.USER
    assert token.scopes == ["project:read", "project:releases"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/0/organizations/sentry/releases/control@abc123/").status_code == 200


def test_create_token_for_org_is_an_org_ci_token():
    run("seed")

    secret = run("create_token", "--org", "sentry").strip().splitlines()[-1]

    token = ApiToken.objects.get(token_hash=hash_token(secret))
    assert (token.kind, token.scopes, token.organization.slug) == ("org", ["org:ci"], "sentry")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No user with username 'nobody'."),
        (["--org", "nowhere"], "No organization with slug 'nowhere'."),
        (
            ["--user", "rajraspberry", "--scopes", "project:read fly:away"],
            "Unknown scope(s): fly:away",
        ),
        (["--org", "sentry", "--scopes", "project:read"], "--scopes applies to user tokens"),
    ],
)
def test_create_token_bad_arguments_are_clear_errors(args, message):
    run("seed")

    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("create_token", *args)
    assert ApiToken.objects.count() == 0


def test_create_token_needs_user_or_org():
    with pytest.raises(CommandError, match="one of the arguments --user --org is required"):
        run("create_token")
