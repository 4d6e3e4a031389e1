"""Management commands: seed and create_token."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.http import HttpRequest
from rest_framework.test import APIClient

from accounts.models import ApiToken, User, hash_token
from releases.models import Release, ReleaseProjectEnvironment, SessionRollup

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


def test_seed_gives_a_demo_release_with_crashes_commits_a_deploy_and_adoption():
    run("seed")

    release = Release.objects.get(version="control@1.2.0")
    rollups = SessionRollup.objects.filter(release=release).aggregate(crashed=Sum("crashed"))
    assert rollups["crashed"] > 0
    assert release.commit_count == 3
    assert release.last_commit.message.endswith("(control@1.2.0)")
    assert release.total_deploys == 1
    stages = ReleaseProjectEnvironment.objects.filter(release=release, adopted__isnull=False)
    assert stages.exists()


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


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_create_token_reuse_prints_the_same_working_token_on_every_run(tmp_path, member):
    kept = tmp_path / "credentials"
    args = ("create_token", "--user", member.user.username, "--name", "demo", "--reuse",
            "--credentials", str(kept))  # fmt: skip

    first = last_line(run(*args))
    second = last_line(run(*args))

    assert first == second
    assert ApiToken.objects.get().token_hash == hash_token(first)
    assert kept.stat().st_mode & 0o777 == 0o600
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {second}")
    assert client.get("/api/0/").json()["auth"] == {
        "scopes": ["org:read", "project:read", "project:releases"]
    }


def test_create_token_reuse_mints_a_new_token_when_the_kept_one_no_longer_fits(tmp_path, user):
    kept = tmp_path / "credentials"
    args = ("create_token", "--user", user.username, "--name", "demo", "--reuse",
            "--credentials", str(kept))  # fmt: skip
    first = last_line(run(*args))
    ApiToken.objects.all().delete()

    after_delete = last_line(run(*args))
    other_scopes = last_line(run(*args, "--scopes", "project:read"))

    assert len({first, after_delete, other_scopes}) == 3
    assert last_line(run(*args, "--scopes", "project:read")) == other_scopes
    assert sorted(t.scopes for t in ApiToken.objects.all()) == [
        ["org:read", "project:read", "project:releases"],
        ["project:read"],
    ]


def test_create_token_reuse_needs_a_name(tmp_path, user):
    with pytest.raises(CommandError, match="--reuse needs --name"):
        run("create_token", "--user", user.username, "--reuse", "--credentials", str(tmp_path))


def test_create_admin_keeps_one_password_that_signs_in(tmp_path, client):
    kept = tmp_path / "credentials"

    first = last_line(run("create_admin", "--credentials", str(kept)))
    second = last_line(run("create_admin", "--credentials", str(kept)))

    assert first == second
    assert len(first) >= 16
    assert client.login(request=HttpRequest(), username="admin", password=first)
    response = client.get("/admin/")
    assert response.status_code == 200


def test_create_admin_repairs_a_changed_password_and_lost_rights(tmp_path, client):
    kept = tmp_path / "credentials"
    password = last_line(run("create_admin", "--credentials", str(kept)))
    user = User.objects.get(username="admin")
    user.set_password("something else")
    user.is_superuser = False
    user.save()

    again = last_line(run("create_admin", "--credentials", str(kept)))

    user.refresh_from_db()
    assert again == password
    assert user.is_superuser
    assert client.login(request=HttpRequest(), username="admin", password=password)
