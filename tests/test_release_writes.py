"""POST, PUT and DELETE on organization releases: upsert, validation, permissions, atomicity."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, OrganizationMember, Team
from releases.models import (
    Commit,
    IssueGroup,
    Project,
    Release,
    ReleaseCommit,
    ReleaseHeadCommit,
    ReleaseProject,
    ReleaseStatus,
    Repository,
)
from tests.factories import (
    MemberFactory,
    OrganizationFactory,
    ProjectFactory,
    ReleaseFactory,
    RepositoryFactory,
    TeamFactory,
    UserFactory,
    create_token,
)

pytestmark = pytest.mark.django_db

URL = "/api/0/organizations/acme/releases/"
INVALID_PROJECTS = {"projects": ["Invalid project ids or slugs"]}
NOT_NULL = "This field may not be null."


def detail(version: str) -> str:
    return f"{URL}{version}/"


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def other_project(org: Organization) -> Project:
    """A project of a team the member is not in."""
    return ProjectFactory(organization=org, slug="secret", teams=[TeamFactory(organization=org)])


# ---------------------------------------------------------------- POST: create and upsert


def test_create_release_with_project_slugs_returns_201_and_stores_user_agent(
    api_client: APIClient, project: Project
):
    response = api_client.post(
        URL,
        {"version": "1.2.1", "projects": ["backend"]},
        format="json",
        HTTP_USER_AGENT="sentry-cli/2.77.4",
    )

    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["version"] == "1.2.1"
    assert body["userAgent"] == "sentry-cli/2.77.4"
    assert body["newGroups"] == 0
    assert body["firstEvent"] is None
    assert body["currentProjectMeta"] == {}
    assert [p["slug"] for p in body["projects"]] == ["backend"]
    release = Release.objects.get(version="1.2.1")
    assert release.user_agent == "sentry-cli/2.77.4"
    assert list(release.projects.all()) == [project]


def test_create_release_accepts_numeric_ids_and_a_mix_with_slugs(
    api_client: APIClient, project: Project, team: Team
):
    second = ProjectFactory(organization=project.organization, slug="web", teams=[team])

    as_ids = api_client.post(URL, {"version": "a", "projects": [project.pk]}, format="json")
    mixed = api_client.post(
        URL, {"version": "b", "projects": [str(project.pk), "web"]}, format="json"
    )

    assert as_ids.status_code == 201, as_ids.content
    assert mixed.status_code == 201, mixed.content
    assert set(Release.objects.get(version="b").projects.all()) == {project, second}


def test_create_release_stores_ref_url_date_released_owner_and_status(
    api_client: APIClient, project: Project, member: OrganizationMember
):
    response = api_client.post(
        URL,
        {
            "version": "app@2.0.0",
            "projects": ["backend"],
            "ref": "main",
            "url": "https://example.com/r/2",
            "dateReleased": "2024-05-21T11:26:16.570159408Z",
            "owner": member.user.email,
            "status": "archived",
            "dateStarted": "2024-05-21T11:00:00Z",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["ref"] == "main"
    assert body["url"] == "https://example.com/r/2"
    assert body["dateReleased"] == "2024-05-21T11:26:16.570159Z"
    assert body["owner"]["id"] == str(member.user.pk)
    assert body["status"] == "archived"
    assert body["versionInfo"]["version"]["major"] == 2
    release = Release.objects.get(version="app@2.0.0")
    assert (release.major, release.minor, release.patch) == (2, 0, 0)
    assert release.date_released == datetime(2024, 5, 21, 11, 26, 16, 570159, tzinfo=UTC)


def test_create_existing_release_returns_208_and_keeps_ref(api_client: APIClient, project):
    ReleaseFactory(organization=project.organization, version="1.0", ref="old", projects=[project])

    response = api_client.post(
        URL, {"version": "1.0", "projects": ["backend"], "ref": "new"}, format="json"
    )

    assert response.status_code == 208, response.content
    assert response.json()["ref"] == "old"
    assert Release.objects.filter(version="1.0").count() == 1


def test_create_existing_release_with_a_new_project_returns_201(
    api_client: APIClient, project: Project, team: Team
):
    ReleaseFactory(organization=project.organization, version="1.0", projects=[project])
    web = ProjectFactory(organization=project.organization, slug="web", teams=[team])

    response = api_client.post(URL, {"version": "1.0", "projects": ["backend", "web"]})

    assert response.status_code == 201, response.content
    assert set(Release.objects.get(version="1.0").projects.all()) == {project, web}


def test_archive_and_restore_through_post_with_empty_projects(api_client: APIClient, project):
    ReleaseFactory(organization=project.organization, version="1.0", projects=[project])

    archived = api_client.post(
        URL, {"version": "1.0", "projects": [], "status": "archived"}, format="json"
    )
    stored_after_archive = Release.objects.get(version="1.0").status
    restored = api_client.post(
        URL, {"version": "1.0", "projects": [], "status": "open"}, format="json"
    )

    assert archived.status_code == 208, archived.content
    assert archived.json()["status"] == "archived"
    assert stored_after_archive == ReleaseStatus.ARCHIVED
    assert restored.status_code == 208
    assert restored.json()["status"] == "open"
    assert Release.objects.get(version="1.0").status == ReleaseStatus.OPEN


def test_archiving_a_legacy_null_status_release_hides_it_from_the_list(
    api_client: APIClient, project
):
    org = project.organization
    ReleaseFactory(organization=org, version="1.0", status=None, projects=[project])
    assert len(api_client.get(URL).json()) == 1

    response = api_client.post(
        URL, {"version": "1.0", "projects": [], "status": "archived"}, format="json"
    )

    assert response.status_code == 208
    assert api_client.get(URL).json() == []


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("", "This field may not be blank."),
        ("1.2.3\n", "Release with name 1.2.3\n is not allowed"),
        ("\n1.2.3", "Release with name \n1.2.3 is not allowed"),
        ("1.\n2.3", "Release with name 1.\n2.3 is not allowed"),
        ("1.2.3\f", "Release with name 1.2.3\f is not allowed"),
        ("1.2.3\t", "Release with name 1.2.3\t is not allowed"),
        ("   ", "Release with name     is not allowed"),
        ("a/b", "Release with name a/b is not allowed"),
        ("..", "Release with name .. is not allowed"),
        ("Latest", "Release with name Latest is not allowed"),
        ("x" * 201, "Ensure this field has no more than 200 characters."),
    ],
)
def test_create_release_rejects_invalid_versions(
    api_client: APIClient, project: Project, version: str, message: str
):
    response = api_client.post(URL, {"version": version, "projects": ["backend"]}, format="json")

    assert response.status_code == 400, response.content
    assert response.json() == {"version": [message]}
    assert not Release.objects.exists()


def test_create_release_accepts_build_metadata(api_client: APIClient, project: Project):
    response = api_client.post(URL, {"version": "1.2.3+dev", "projects": ["backend"]})

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"projects": ["backend"]}, {"version": ["This field is required."]}),
        ({"version": "1.0"}, {"projects": ["This field is required."]}),
        ({"version": "1.0", "projects": None}, {"projects": ["This field may not be null."]}),
        ({"version": "1.0", "projects": ["nope"]}, INVALID_PROJECTS),
        ({"version": "1.0", "projects": [999999]}, INVALID_PROJECTS),
        ({"version": "1.0", "projects": [{"a": 1}]}, INVALID_PROJECTS),
        ({"version": "1.0", "projects": [True]}, INVALID_PROJECTS),
        ({"version": "1.0", "projects": [], "status": "gone"}, {"status": ["Invalid status gone"]}),
        (
            {"version": "1.0", "projects": [], "status": None},
            {"status": ["This field may not be null."]},
        ),
        ({"version": "1.0", "projects": [], "url": "notaurl"}, {"url": ["Enter a valid URL."]}),
        ({"version": "1.0", "projects": [], "ref": "r" * 201}, None),
        ({"version": "1.0", "projects": [], "dateReleased": "yesterday"}, None),
        ({"version": "1.0", "projects": [], "owner": "nobody"}, {"owner": ["Unable to find user"]}),
        ({"version": "1.0", "projects": [], "refs": [None]}, None),
        ({"version": "1.0", "projects": [], "refs": None}, {"refs": [NOT_NULL]}),
        ({"version": "1.0", "projects": [], "commits": [{"repository": "a"}]}, None),
        ({"version": 5, "projects": "backend"}, None),
        ([1, 2], None),
    ],
)
def test_create_release_validation_errors_are_400_and_write_nothing(
    api_client: APIClient, project: Project, body: Any, errors: dict[str, Any] | None
):
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    if errors is not None:
        assert response.json() == errors
    assert not Release.objects.exists()


def test_create_release_refuses_a_project_of_another_team(
    api_client: APIClient, project: Project, other_project: Project
):
    response = api_client.post(URL, {"version": "1.0", "projects": ["secret"]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"projects": ["Invalid project ids or slugs"]}


def test_create_release_refuses_a_project_of_another_organization(
    api_client: APIClient, project: Project
):
    foreign = ProjectFactory(slug="theirs")

    by_slug = api_client.post(URL, {"version": "1.0", "projects": ["theirs"]}, format="json")
    by_id = api_client.post(URL, {"version": "1.0", "projects": [foreign.pk]}, format="json")

    assert by_slug.status_code == 400
    assert by_id.status_code == 400
    assert not Release.objects.exists()


def test_create_release_with_an_empty_owner_has_none(api_client: APIClient, project: Project):
    response = api_client.post(URL, {"version": "1.0", "projects": [], "owner": ""}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["owner"] is None


def test_create_release_owner_must_be_a_member(api_client: APIClient, project: Project):
    outsider = UserFactory(username="mallory")

    response = api_client.post(
        URL, {"version": "1.0", "projects": [], "owner": outsider.username}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"owner": ["User does not have access to this organization"]}


@pytest.fixture
def impostor():
    """An older account (lower id) sharing the conftest member's e-mail, in no organization."""
    return UserFactory(username="older-account", email="ALICE@example.com")


def test_create_release_owner_prefers_the_member_sharing_an_email(
    impostor, api_client: APIClient, project: Project, member
):
    assert impostor.pk < member.user.pk

    response = api_client.post(
        URL, {"version": "1.0", "projects": [], "owner": "alice@example.com"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["owner"]["id"] == str(member.user.pk)


def test_post_on_existing_release_with_inaccessible_projects_is_400(
    api_client: APIClient, project: Project, other_project: Project
):
    ReleaseFactory(
        organization=project.organization,
        version="1.0",
        projects=[project, other_project],
    )

    response = api_client.post(
        URL, {"version": "1.0", "projects": [], "status": "archived"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "projects": ["You do not have permission to one of the projects of this release"]
    }
    assert Release.objects.get(version="1.0").status == ReleaseStatus.OPEN


def test_post_with_commits_creates_repositories_and_authors(api_client: APIClient, project):
    commits = [
        {
            "id": "a" * 40,
            "repository": "acme/app",
            "message": "first",
            "author_name": "Ann",
            "author_email": "ann@example.com",
            "timestamp": "2024-01-01T10:00:00Z",
        },
        {
            "id": "b" * 40,
            "repository": "acme/app",
            "message": "second",
            "author_name": "Bob Smith",
            "timestamp": "2024-01-02T10:00:00+02:00",
        },
        {"id": "c" * 40, "repository": "acme/app", "message": "wip #skipsentry"},
    ]

    response = api_client.post(
        URL, {"version": "1.0", "projects": ["backend"], "commits": commits}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["commitCount"] == 2
    assert body["lastCommit"]["id"] == "b" * 40
    assert body["lastCommit"]["repository"]["provider"] == {
        "id": "unknown",
        "name": "Unknown Provider",
    }
    assert sorted(a["email"] for a in body["authors"]) == [
        "ann@example.com",
        "bobsmith@localhost",
    ]
    assert Repository.objects.filter(name="acme/app", provider__isnull=True).count() == 1
    assert not Commit.objects.filter(key="c" * 40).exists()


def test_two_simultaneous_posts_of_a_new_version_create_one_release(
    live_server: Any, transactional_db: None
):
    org = OrganizationFactory(slug="acme")
    team = TeamFactory(organization=org)
    ProjectFactory(organization=org, slug="backend", teams=[team])
    member = MemberFactory(organization=org, teams=[team])
    secret = create_token(user=member.user, scopes=["project:releases"])
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def post() -> None:
        request = urllib.request.Request(  # noqa: S310 (the live server's http URL)
            f"{live_server.url}{URL}",
            data=json.dumps({"version": "race@1.0", "projects": ["backend"]}).encode(),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            method="POST",
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 208, 208, 208, 208, 208]
    assert Release.objects.filter(version="race@1.0").count() == 1
    assert ReleaseProject.objects.filter(release__version="race@1.0").count() == 1


# ---------------------------------------------------------------- scopes and organizations


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["project:read"], 403),
        (["org:read"], 403),
        (["project:write"], 201),
        (["project:admin"], 201),
        (["project:releases"], 201),
    ],
)
def test_create_release_needs_a_write_scope(
    member: OrganizationMember, project: Project, scopes: list[str], expected: int
):
    member.role = "admin"  # holds every project scope; the token narrows them
    member.save()
    client = client_for(create_token(user=member.user, scopes=scopes))

    response = client.post(URL, {"version": "1.0", "projects": ["backend"]}, format="json")

    assert response.status_code == expected, response.content


@pytest.mark.parametrize(
    ("scopes", "same_org", "expected"),
    [([], True, 403), (["org:ci"], False, 403), (["org:ci"], True, 201)],
)
def test_organization_tokens_on_create(
    org: Organization, project: Project, scopes: list[str], same_org: bool, expected: int
):
    owner = org if same_org else OrganizationFactory()
    client = client_for(create_token(organization=owner, scopes=scopes))

    response = client.post(URL, {"version": "1.0", "projects": ["backend"]}, format="json")

    assert response.status_code == expected, response.content


def test_billing_member_cannot_create(org: Organization, project: Project, team: Team):
    billing = MemberFactory(organization=org, role="billing", teams=[team])
    client = client_for(create_token(user=billing.user, scopes=["project:releases"]))

    response = client.post(URL, {"version": "1.0", "projects": ["backend"]}, format="json")

    assert response.status_code == 403


def test_member_of_another_organization_gets_403_and_nothing_is_written(project: Project):
    stranger = MemberFactory(organization=OrganizationFactory(slug="other"))
    client = client_for(create_token(user=stranger.user, scopes=["project:releases"]))

    response = client.post(URL, {"version": "1.0", "projects": ["backend"]}, format="json")

    assert response.status_code == 403
    assert not Release.objects.exists()


def test_unknown_organization_is_404(api_client: APIClient):
    response = api_client.post(
        "/api/0/organizations/nope/releases/", {"version": "1", "projects": []}, format="json"
    )

    assert response.status_code == 404


def test_no_credentials_is_401(anon_client: APIClient, project: Project):
    response = anon_client.post(URL, {"version": "1.0", "projects": ["backend"]}, format="json")

    assert response.status_code == 401


# ---------------------------------------------------------------- PUT


@pytest.fixture
def release(project: Project) -> Release:
    return ReleaseFactory(organization=project.organization, version="app@1.0", projects=[project])


def test_put_updates_ref_url_and_date_released_and_ignores_unknown_keys(
    api_client: APIClient, release: Release
):
    response = api_client.put(
        detail(release.version),
        {
            "ref": "v1",
            "url": "https://example.com/1",
            "dateReleased": "2024-05-21T11:04:55Z",
            "projects": ["does-not-matter"],
            "version": "ignored",
            "whatever": 1,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["ref"], body["url"], body["dateReleased"]) == (
        "v1",
        "https://example.com/1",
        "2024-05-21T11:04:55Z",
    )
    release.refresh_from_db()
    assert release.version == "app@1.0"
    assert release.ref == "v1"


def test_put_empty_values_do_not_clear_fields(api_client: APIClient, release: Release):
    Release.objects.filter(pk=release.pk).update(ref="keep", url="https://example.com/k")

    response = api_client.put(
        detail(release.version), {"ref": "", "url": None, "dateReleased": None}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["ref"], response.json()["url"]) == ("keep", "https://example.com/k")


def test_put_status_archives_and_unarchives(api_client: APIClient, release: Release):
    archived = api_client.put(detail(release.version), {"status": "archived"}, format="json")
    stored = Release.objects.get(pk=release.pk).status
    opened = api_client.put(detail(release.version), {"status": "open"}, format="json")

    assert archived.json()["status"] == "archived"
    assert stored == ReleaseStatus.ARCHIVED
    assert opened.status_code == 200
    assert Release.objects.get(pk=release.pk).status == ReleaseStatus.OPEN


def test_put_version_with_special_characters(api_client: APIClient, project: Project):
    ReleaseFactory(organization=project.organization, version="b@1.2.3+build.7", projects=[project])

    response = api_client.put(f"{URL}b@1.2.3%2Bbuild.7/", {"ref": "x"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["version"] == "b@1.2.3+build.7"


def test_put_refs_record_head_and_previous_commits(api_client: APIClient, release: Release):
    org = release.organization
    RepositoryFactory(organization=org, name="acme/app")
    RepositoryFactory(organization=org, name="acme/lib")

    response = api_client.put(
        detail(release.version),
        {
            "refs": [
                {"repository": "acme/app", "commit": "a" * 40},
                {"repository": "acme/lib", "commit": "1" * 12 + ".." + "2" * 12},
            ]
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["commitCount"] == 2
    heads = {
        h.repository.name: (h.commit.key, h.previous_commit and h.previous_commit.key)
        for h in ReleaseHeadCommit.objects.filter(release=release).select_related(
            "repository", "commit", "previous_commit"
        )
    }
    assert heads == {"acme/app": ("a" * 40, None), "acme/lib": ("2" * 12, "1" * 12)}


def test_put_head_commits_are_refs(api_client: APIClient, release: Release):
    RepositoryFactory(organization=release.organization, name="acme/app")

    response = api_client.put(
        detail(release.version),
        {"headCommits": [{"repository": "acme/app", "currentId": "b" * 40, "previousId": "c"}]},
        format="json",
    )

    assert response.status_code == 200, response.content
    head = ReleaseHeadCommit.objects.get(release=release)
    assert (head.commit.key, head.previous_commit.key) == ("b" * 40, "c")


def test_put_refs_with_unknown_repositories_is_400_and_changes_nothing(
    api_client: APIClient, release: Release
):
    RepositoryFactory(organization=release.organization, name="acme/app")
    RepositoryFactory(name="not_a_repo")  # another organization's

    response = api_client.put(
        detail(release.version),
        {
            "ref": "changed",
            "refs": [
                {"repository": "not_a_repo", "commit": "a" * 40},
                {"repository": "acme/app", "commit": "a" * 40},
                {"repository": "other", "commit": "a" * 40},
            ],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"refs": ["Invalid repository names: not_a_repo,other"]}
    release.refresh_from_db()
    assert release.ref is None
    assert not Commit.objects.exists()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"repository": "r", "commit": "a" * 65}, "Commit too long - max is 64 chars"),
        ({"repository": "r", "commit": "..abc"}, "Commit cannot begin or end with .."),
        ({"repository": "r", "commit": "abc.."}, "Commit cannot begin or end with .."),
        ({"repository": "r", "commit": "a..b..c"}, "Commit cannot begin or end with .."),
        (
            {"repository": "r", "commit": "a" * 65 + "..b"},
            "Start or end commit too long - max is 64 chars each",
        ),
    ],
)
def test_put_refs_commit_validation(
    api_client: APIClient, release: Release, ref: dict[str, str], message: str
):
    response = api_client.put(detail(release.version), {"refs": [ref]}, format="json")

    assert response.status_code == 400
    # DRF's shape for errors in list items: a dict keyed by the item's index.
    assert response.json() == {"refs": {"0": {"commit": [message]}}}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "closed"},
        {"status": None},
        {"url": "ci/1"},
        {"dateReleased": "soon"},
        {"ref": "r" * 201},
        {"commits": None},
        {"commits": [{"repository": "a_repo"}]},
        {"commits": [{"id": "a" * 65}]},
        {"commits": [{"id": "a", "patch_set": [{"path": "x" * 511, "type": "M"}]}]},
        {"commits": [{"id": "a", "patch_set": [{"path": "x", "type": "X"}]}]},
        {"commits": [{"id": "a", "timestamp": "noon"}]},
        {"commits": "abc"},
        {"refs": [{"commit": "a"}]},
        {"refs": "abc"},
        {"headCommits": [{"repository": "r"}]},
        {"headCommits": None},
    ],
)
def test_put_validation_errors_are_400_and_change_nothing(
    api_client: APIClient, release: Release, body: dict[str, Any]
):
    response = api_client.put(detail(release.version), {"ref": "new", **body}, format="json")

    assert response.status_code == 400, response.content
    assert Release.objects.get(pk=release.pk).ref is None


def test_put_patch_set_messages(api_client: APIClient, release: Release):
    long_path = {"id": "a", "patch_set": [{"path": "x" * 275, "type": "A"}]}
    bad_type = {"id": "b", "patch_set": [{"path": "x", "type": "X"}]}

    ok = api_client.put(detail(release.version), {"commits": [long_path]}, format="json")
    bad = api_client.put(detail(release.version), {"commits": [bad_type]}, format="json")

    assert ok.status_code == 200
    message = "Commit patch_set type X is not supported."
    assert bad.json() == {"commits": {"0": {"patch_set": {"0": {"type": [message]}}}}}


def test_put_commits_then_empty_refs_clear_them(api_client: APIClient, release: Release):
    RepositoryFactory(organization=release.organization, name="acme/app")
    api_client.put(
        detail(release.version),
        {"commits": [{"id": "a", "repository": "acme/app"}, {"id": "b"}]},
        format="json",
    )
    assert ReleaseCommit.objects.filter(release=release).count() == 2

    response = api_client.put(detail(release.version), {"refs": []}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["commitCount"], body["lastCommit"], body["authors"]) == (0, None, [])
    assert not ReleaseCommit.objects.filter(release=release).exists()
    assert not ReleaseHeadCommit.objects.filter(release=release).exists()


def test_put_on_a_release_of_another_team_is_404(
    api_client: APIClient, org: Organization, other_project: Project
):
    ReleaseFactory(organization=org, version="hidden", projects=[other_project])

    response = api_client.put(detail("hidden"), {"ref": "x"}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}
    assert Release.objects.get(version="hidden").ref is None


def test_put_needs_access_to_every_project_of_the_release(
    api_client: APIClient, org: Organization, project: Project, other_project: Project
):
    ReleaseFactory(organization=org, version="shared", projects=[project, other_project])

    closed = api_client.put(detail("shared"), {"ref": "x"}, format="json")
    org.open_membership = True
    org.save()
    opened = api_client.put(detail("shared"), {"ref": "x"}, format="json")

    assert closed.status_code == 404
    assert opened.status_code == 200


def test_put_on_another_organizations_release_is_404(api_client: APIClient, project: Project):
    foreign = ProjectFactory(organization=OrganizationFactory(slug="other"))
    ReleaseFactory(organization=foreign.organization, version="theirs", projects=[foreign])

    response = api_client.put(detail("theirs"), {"ref": "x"}, format="json")

    assert response.status_code == 404


def test_put_with_read_scope_is_403(token: Callable[..., str], release: Release):
    client = client_for(token(["project:read"]))

    response = client.put(detail(release.version), {"ref": "x"}, format="json")

    assert response.status_code == 403


# ---------------------------------------------------------------- DELETE


def test_delete_release_returns_204_and_removes_it(api_client: APIClient, release: Release):
    response = api_client.delete(detail(release.version))

    assert response.status_code == 204
    assert response.content == b""
    assert not Release.objects.filter(pk=release.pk).exists()
    assert api_client.delete(detail(release.version)).status_code == 404


def test_delete_release_with_new_issues_is_400(api_client: APIClient, release: Release):
    ReleaseProject.objects.filter(release=release).update(new_groups=1)

    response = api_client.delete(detail(release.version))

    assert response.status_code == 400
    assert response.json() == {
        "detail": "This release is referenced by active issues and cannot be removed."
    }
    assert Release.objects.filter(pk=release.pk).exists()


def test_delete_release_that_first_saw_an_issue_is_400(api_client: APIClient, release: Release):
    IssueGroup.objects.create(
        project=release.projects.get(), fingerprint="f" * 40, first_release=release,
        first_seen=release.date_added,
    )  # fmt: skip

    response = api_client.delete(detail(release.version))

    assert response.status_code == 400
    assert Release.objects.filter(pk=release.pk).exists()


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["project:releases"], 204),
        (["project:admin"], 204),
        (["project:write"], 403),
        (["project:read"], 403),
    ],
)
def test_delete_scopes(
    member: OrganizationMember, release: Release, scopes: list[str], expected: int
):
    member.role = "admin"
    member.save()
    client = client_for(create_token(user=member.user, scopes=scopes))

    response = client.delete(detail(release.version))

    assert response.status_code == expected
    assert Release.objects.filter(pk=release.pk).exists() == (expected != 204)


def test_member_token_with_project_write_cannot_create(token: Callable[..., str], project):
    # A member's role has no project:write, so a token holding only that scope can do nothing.
    response = client_for(token(["project:write"])).post(
        URL, {"version": "1.0", "projects": ["backend"]}, format="json"
    )

    assert response.status_code == 403


def test_organization_ci_token_cannot_delete(org: Organization, release: Release):
    client = client_for(create_token(organization=org, scopes=["org:ci"]))

    response = client.delete(detail(release.version))

    assert response.status_code == 403
    assert Release.objects.filter(pk=release.pk).exists()


def test_delete_needs_access_to_every_project(
    api_client: APIClient, org: Organization, project: Project, other_project: Project
):
    ReleaseFactory(organization=org, version="shared", projects=[project, other_project])

    closed = api_client.delete(detail("shared"))
    org.open_membership = True
    org.save()
    opened = api_client.delete(detail("shared"))

    assert closed.status_code == 404
    assert opened.status_code == 204


def test_delete_another_organizations_release_is_404(api_client: APIClient, project: Project):
    foreign = ProjectFactory(organization=OrganizationFactory(slug="other"))
    ReleaseFactory(organization=foreign.organization, version="theirs", projects=[foreign])

    response = api_client.delete(detail("theirs"))

    assert response.status_code == 404
    assert Release.objects.filter(version="theirs").exists()
