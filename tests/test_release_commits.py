"""Release commits: ingestion rules, ``commits/`` and ``previous-with-commits/``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization
from releases.models import Commit, CommitAuthor, Project, Release, ReleaseHeadCommit, Repository
from tests.factories import (
    CommitFactory,
    MemberFactory,
    ProjectFactory,
    ReleaseFactory,
    RepositoryFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/0/organizations/acme/releases/"


def put_commits(client: APIClient, version: str, commits: list[dict[str, object]]) -> None:
    response = client.put(f"{URL}{version}/", {"commits": commits}, format="json")
    assert response.status_code == 200, response.content


@pytest.fixture
def release(project: Project) -> Release:
    return ReleaseFactory(organization=project.organization, version="app@1.0", projects=[project])


def test_commits_are_listed_newest_first_with_string_ids(api_client: APIClient, release):
    put_commits(
        api_client,
        release.version,
        [
            {"id": "old", "repository": "acme/app", "timestamp": "2024-01-01T00:00:00Z"},
            {
                "id": "new",
                "repository": "acme/app",
                "timestamp": "2024-01-03T00:00:00Z",
                "message": "fix",
                "author_email": "Dev@Example.com",
                "author_name": "Dev",
            },
            {"id": "mid", "timestamp": "2024-01-02T00:00:00Z"},
        ],
    )

    response = api_client.get(f"{URL}{release.version}/commits/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert [c["id"] for c in body] == ["new", "mid", "old"]
    assert body[0]["message"] == "fix"
    assert body[0]["dateCreated"] == "2024-01-03T00:00:00Z"
    assert body[0]["author"] == {"name": "Dev", "email": "Dev@Example.com"}
    assert body[0]["repository"]["id"] == str(Repository.objects.get(name="acme/app").pk)
    assert body[1]["repository"]["name"] == f"organization-{release.organization_id}"
    assert [r["version"] for r in body[0]["releases"]] == [release.version]
    assert 'rel="next"; results="false"' in response["Link"]


def test_commit_authors_resolve_to_members_by_email(
    api_client: APIClient, release: Release, member
):
    put_commits(
        api_client,
        release.version,
        [{"id": "a", "author_email": "ALICE@example.com", "author_name": "Al"}],
    )

    body = api_client.get(f"{URL}{release.version}/").json()

    assert [a["id"] for a in body["authors"]] == [str(member.user.pk)]


def test_recommitting_updates_existing_commits_and_author_names(api_client, release):
    put_commits(api_client, release.version, [{"id": "a", "author_email": "x@y.z"}])

    put_commits(
        api_client,
        release.version,
        [{"id": "a", "message": "now with message", "author_email": "x@y.z", "author_name": "X"}],
    )

    commit = Commit.objects.get(key="a")
    assert commit.message == "now with message"
    assert CommitAuthor.objects.get(email="x@y.z").name == "X"
    assert Commit.objects.count() == 1


def test_long_author_emails_are_cut_to_75_characters(api_client: APIClient, release):
    email = "a" * 100 + "@example.com"

    put_commits(api_client, release.version, [{"id": "a", "author_email": email}])

    assert CommitAuthor.objects.get().email == email[:75]


def test_commits_record_a_head_commit_per_repository(api_client: APIClient, release):
    put_commits(
        api_client,
        release.version,
        [
            {"id": "a2", "repository": "r/a", "timestamp": "2024-01-02T00:00:00Z"},
            {"id": "a1", "repository": "r/a", "timestamp": "2024-01-01T00:00:00Z"},
            {"id": "b1", "repository": "r/b"},
        ],
    )

    heads = dict(
        ReleaseHeadCommit.objects.filter(release=release).values_list(
            "repository__name", "commit__key"
        )
    )
    assert heads == {"r/a": "a2", "r/b": "b1"}


def test_commits_of_a_hidden_release_are_404(api_client: APIClient, org: Organization):
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    ReleaseFactory(organization=org, version="hidden", projects=[hidden])

    assert api_client.get(f"{URL}hidden/commits/").status_code == 404
    assert api_client.get(f"{URL}hidden/previous-with-commits/").status_code == 404
    assert api_client.get(f"{URL}missing/commits/").status_code == 404


def test_commits_list_costs_a_constant_number_of_queries(
    api_client: APIClient, release: Release, django_assert_num_queries
):
    repo = RepositoryFactory(organization=release.organization)
    put_commits(
        api_client,
        release.version,
        [{"id": "one", "repository": repo.name, "author_email": "a@b.c"}],
    )
    url = f"{URL}{release.version}/commits/"
    with CaptureQueriesContext(connection) as one:
        api_client.get(url)
    put_commits(
        api_client,
        release.version,
        [{"id": f"c{n}", "author_email": f"{n}@x.y"} for n in range(10)],
    )

    with CaptureQueriesContext(connection) as ten:
        response = api_client.get(url)

    assert len(response.json()) == 10
    assert len(one) == len(ten)
    # token, organization with the caller's membership, release (with whether the caller sees
    # one of its projects), commits page (with repository and author), the commits' releases,
    # pull requests, members matching the authors (a read opens no transaction: no savepoints)
    with django_assert_num_queries(7):
        api_client.get(url)


# ---------------------------------------------------------------- previous-with-commits


def test_previous_with_commits_is_empty_when_no_release_has_commits(api_client, release):
    response = api_client.get(f"{URL}{release.version}/previous-with-commits/")

    assert response.status_code == 200
    assert response.json() == {}


def test_previous_with_commits_is_the_newest_earlier_release_with_commits(
    api_client: APIClient, project: Project
):
    org = project.organization
    now = timezone.now()
    older = ReleaseFactory(
        organization=org, version="1", projects=[project], date_added=now - timedelta(days=3)
    )
    newer = ReleaseFactory(
        organization=org, version="2", projects=[project], date_added=now - timedelta(days=2)
    )
    future = ReleaseFactory(
        organization=org, version="4", projects=[project], date_added=now + timedelta(days=1)
    )
    other_project = ProjectFactory(organization=org)
    unrelated = ReleaseFactory(
        organization=org, version="x", projects=[other_project], date_added=now
    )
    for item in (older, newer, future, unrelated):
        Release.objects.filter(pk=item.pk).update(
            last_commit=CommitFactory(repository__organization=org)
        )
    current = ReleaseFactory(organization=org, version="3", projects=[project], date_added=now)

    response = api_client.get(f"{URL}{current.version}/previous-with-commits/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == "2"
    assert body["lastCommit"]["id"] == Release.objects.get(pk=newer.pk).last_commit.key


def test_previous_with_commits_uses_date_released_over_date_added(api_client, project):
    org = project.organization
    now = timezone.now()
    released_late = ReleaseFactory(
        organization=org,
        version="1",
        projects=[project],
        date_added=now - timedelta(days=5),
        date_released=now + timedelta(days=1),
    )
    Release.objects.filter(pk=released_late.pk).update(
        last_commit=CommitFactory(repository__organization=org)
    )
    current = ReleaseFactory(organization=org, version="2", projects=[project], date_added=now)

    body = api_client.get(f"{URL}{current.version}/previous-with-commits/").json()

    assert body == {}


def test_previous_with_commits_finds_the_release_itself_once_it_has_commits(
    api_client: APIClient, release: Release
):
    put_commits(api_client, release.version, [{"id": "head"}])

    body = api_client.get(f"{URL}{release.version}/previous-with-commits/").json()

    assert (body["version"], body["lastCommit"]["id"]) == (release.version, "head")


def test_previous_with_commits_ignores_projects_the_caller_cannot_see(
    api_client: APIClient, org: Organization, project: Project
):
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    earlier = ReleaseFactory(
        organization=org, version="1", projects=[hidden], date_added=timezone.now() - timedelta(1)
    )
    Release.objects.filter(pk=earlier.pk).update(
        last_commit=CommitFactory(repository__organization=org)
    )
    current = ReleaseFactory(organization=org, version="2", projects=[project, hidden])
    MemberFactory(organization=org)  # someone else, irrelevant

    body = api_client.get(f"{URL}{current.version}/previous-with-commits/").json()

    assert body == {}


def commits_payload(count: int, repository: str = "acme/app") -> list[dict[str, object]]:
    now = timezone.now()
    return [
        {
            "id": f"{index:040x}",
            "repository": repository,
            "message": f"change {index}",
            "author_email": f"dev{index}@example.com",
            "author_name": f"Dev {index}",
            "timestamp": (now - timedelta(minutes=index)).isoformat(),
        }
        for index in range(count)
    ]


def test_setting_commits_costs_the_same_queries_for_1_or_50(api_client: APIClient, release):
    def count(commits: list[dict[str, object]]) -> int:
        put_commits(api_client, release.version, commits)  # token last_used, repository
        with CaptureQueriesContext(connection) as queries:
            put_commits(api_client, release.version, commits)
        return len(queries)

    assert count(commits_payload(1)) == count(commits_payload(50))
    release.refresh_from_db()
    assert release.commit_count == 50
    assert release.last_commit.key == f"{0:040x}"
    assert len(release.authors) == 50


def test_commits_reuse_a_repository_named_with_other_case(api_client: APIClient, org, release):
    existing = RepositoryFactory(organization=org, name="acme/app")

    put_commits(api_client, release.version, commits_payload(2, repository="ACME/app"))

    assert Repository.objects.filter(organization=org).count() == 1
    assert set(Commit.objects.values_list("repository_id", flat=True)) == {existing.pk}


def test_a_commit_sent_again_keeps_fields_it_does_not_give(api_client: APIClient, release):
    put_commits(api_client, release.version, commits_payload(1))

    put_commits(api_client, release.version, [{"id": f"{0:040x}", "repository": "acme/app"}])

    commit = Commit.objects.get()
    assert (commit.message, commit.author.email) == ("change 0", "dev0@example.com")


def test_a_commit_sent_again_takes_the_fields_it_gives(api_client: APIClient, release):
    put_commits(api_client, release.version, commits_payload(1))

    put_commits(
        api_client,
        release.version,
        [{"id": f"{0:040x}", "repository": "acme/app", "message": "reworded",
          "author_email": "other@example.com"}],
    )  # fmt: skip

    commit = Commit.objects.get()
    assert (commit.message, commit.author.email) == ("reworded", "other@example.com")
