"""The real sentry-cli binary (PyPI ``sentry-cli``) against a live test server on 127.0.0.1.

Each test runs the binary with a throwaway HOME and working directory, only our ``SENTRY_*``
variables and no proxy, then checks its exit code, what it printed and the rows it left.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Organization
from releases.models import (
    Deploy,
    Project,
    Release,
    ReleaseCommit,
    ReleaseHeadCommit,
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
    create_token,
)

pytestmark = pytest.mark.django_db(transaction=True)

SENTRY_CLI = shutil.which("sentry-cli", path=str(Path(sys.executable).parent))
SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40


@dataclass
class Acme:
    organization: Organization
    backend: Project
    web: Project
    token: str


@dataclass
class SentryCli:
    """Runs the binary: ``cli("releases", "new", "1.0")`` → ``CompletedProcess``."""

    env: dict[str, str]
    cwd: Path

    def __call__(
        self, *args: str, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        assert SENTRY_CLI, "sentry-cli is a test dependency (pip install -e '.[test]')"
        return subprocess.run(  # noqa: S603 (our own binary, fixed arguments)
            [SENTRY_CLI, *args],
            env={**self.env, **env},
            cwd=cwd or self.cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def acme() -> Acme:
    organization = OrganizationFactory(slug="acme")
    team = TeamFactory(organization=organization)
    backend = ProjectFactory(organization=organization, slug="backend", teams=[team])
    web = ProjectFactory(organization=organization, slug="web", teams=[team])
    member = MemberFactory(organization=organization, teams=[team], user__email="ci@acme.test")
    token = create_token(user=member.user, scopes=["org:read", "project:read", "project:releases"])
    return Acme(organization, backend, web, token)


@pytest.fixture
def cli(live_server: Any, acme: Acme, tmp_path: Path) -> SentryCli:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SENTRY_") and "proxy" not in key.lower()
    }
    env.update(
        HOME=str(home),
        SENTRY_URL=live_server.url,
        SENTRY_AUTH_TOKEN=acme.token,
        SENTRY_ORG="acme",
        SENTRY_DISABLE_UPDATE_CHECK="1",
        SENTRY_HTTP_MAX_RETRIES="0",
    )
    return SentryCli(env=env, cwd=work)


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(  # noqa: S603
        ["git", "-c", "user.name=Ann Dev", "-c", "user.email=ann@acme.test", *args],  # noqa: S607
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"},
    )
    return result.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A throwaway repository whose ``origin`` is https://github.com/acme/app."""
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://github.com/acme/app.git")
    for number, message in enumerate(["initial", "add feature", "wip #skipsentry"]):
        (repo / f"file{number}.txt").write_text(message)
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", message)
    return repo


def test_cli_binary_is_the_pinned_major_version(cli: SentryCli):
    result = cli("--version")

    assert result.returncode == 0
    assert result.stdout.startswith("sentry-cli 3.")


def test_info_prints_user_and_token_scopes(cli: SentryCli):
    result = cli("info")

    assert result.returncode == 0, result.stderr
    assert "Default Organization: acme" in result.stdout
    assert "User: ci@acme.test" in result.stdout
    scopes = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("-")]
    assert scopes == ["- org:read", "- project:read", "- project:releases"]


def test_info_with_a_bad_token_fails(cli: SentryCli):
    result = cli("info", SENTRY_AUTH_TOKEN="not-a-token")

    assert result.returncode == 1


def test_releases_new_with_projects_links_them(cli: SentryCli, acme: Acme):
    result = cli("releases", "new", "-p", "backend", "-p", str(acme.web.pk), "app@1.0.0")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Created release app@1.0.0"
    release = Release.objects.get(organization=acme.organization, version="app@1.0.0")
    assert set(release.projects.all()) == {acme.backend, acme.web}
    assert release.user_agent.startswith("sentry-cli/3.")
    assert release.date_released is None


def test_releases_new_again_and_with_finalize_is_idempotent(cli: SentryCli, acme: Acme):
    first = cli("releases", "new", "app@1.0.0", SENTRY_PROJECT="backend")
    again = cli("releases", "new", "--finalize", "app@1.0.0", SENTRY_PROJECT="backend")

    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert Release.objects.filter(version="app@1.0.0").count() == 1


def test_releases_new_without_a_project_fails_before_any_request(cli: SentryCli):
    result = cli("releases", "new", "app@1.0.0")

    assert result.returncode == 1
    assert "A project ID or slug is required" in result.stderr
    assert not Release.objects.exists()


def test_releases_new_with_a_project_of_another_organization_fails(cli: SentryCli):
    ProjectFactory(slug="theirs")

    result = cli("releases", "new", "-p", "theirs", "app@1.0.0")

    assert result.returncode == 1
    assert "Invalid project ids or slugs" in result.stderr
    assert not Release.objects.exists()


def test_releases_list_with_and_without_a_project(cli: SentryCli, acme: Acme):
    org = acme.organization
    ReleaseFactory(organization=org, version="backend-only", projects=[acme.backend])
    ReleaseFactory(organization=org, version="web-only", projects=[acme.web])
    ReleaseFactory(
        organization=org,
        version="archived-one",
        status=ReleaseStatus.ARCHIVED,
        projects=[acme.backend],
    )
    other_team = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    ReleaseFactory(organization=org, version="other-team", projects=[other_team])
    foreign = ProjectFactory(slug="backend")
    ReleaseFactory(organization=foreign.organization, version="foreign", projects=[foreign])

    everything = cli("releases", "list")
    backend = cli("releases", "list", "-p", "backend")
    with_projects = cli("releases", "list", "-P")

    assert everything.returncode == 0, everything.stderr
    assert versions_in(everything.stdout) == ["web-only", "backend-only"]
    assert backend.returncode == 0, backend.stderr
    assert versions_in(backend.stdout) == ["backend-only"]
    assert "backend" in with_projects.stdout
    assert "web" in with_projects.stdout


def versions_in(table: str) -> list[str]:
    """The Version column of sentry-cli's ``releases list`` table."""
    rows = [line.split("|") for line in table.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0]]
    column = header.index("Version")
    return [row[column].strip() for row in rows[1:]]


def test_releases_list_of_an_unknown_project_fails(cli: SentryCli):
    result = cli("releases", "list", "-p", "nope")

    assert result.returncode == 1


def test_releases_info_and_commits(cli: SentryCli, acme: Acme):
    ReleaseFactory(organization=acme.organization, version="app@2.0", projects=[acme.backend])
    RepositoryFactory(organization=acme.organization, name="acme/app")
    cli("releases", "set-commits", "app@2.0", "--commit", f"acme/app@{SHA_A}")

    info = cli("releases", "info", "app@2.0")
    with_commits = cli("releases", "info", "-C", "app@2.0")
    missing = cli("releases", "info", "app@9.9")

    assert info.returncode == 0, info.stderr
    assert "app@2.0" in info.stdout
    assert with_commits.returncode == 0, with_commits.stderr
    assert SHA_A in with_commits.stdout
    assert missing.returncode == 1
    assert missing.stdout == ""


def test_releases_finalize_sets_date_released(cli: SentryCli, acme: Acme):
    ReleaseFactory(organization=acme.organization, version="app@2.0", projects=[acme.backend])

    result = cli(
        "releases",
        "finalize",
        "app@2.0",
        "--released",
        "1700000000",
        "--url",
        "https://ci.acme.test/7",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Finalized release app@2.0"
    release = Release.objects.get(version="app@2.0")
    assert release.date_released is not None
    assert int(release.date_released.timestamp()) == 1700000000
    assert release.url == "https://ci.acme.test/7"


def test_releases_archive_and_restore(cli: SentryCli, acme: Acme):
    ReleaseFactory(organization=acme.organization, version="app@2.0", projects=[acme.backend])

    archived = cli("releases", "archive", "app@2.0")
    status_after_archive = Release.objects.get(version="app@2.0").status
    restored = cli("releases", "restore", "app@2.0")

    assert archived.returncode == 0, archived.stderr
    assert archived.stdout.strip() == "Archived release app@2.0"
    assert status_after_archive == ReleaseStatus.ARCHIVED
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == "Restored release app@2.0"
    assert Release.objects.get(version="app@2.0").status == ReleaseStatus.OPEN


def test_releases_delete_twice(cli: SentryCli, acme: Acme):
    ReleaseFactory(organization=acme.organization, version="app@2.0", projects=[acme.backend])

    first = cli("releases", "delete", "app@2.0")
    second = cli("releases", "delete", "app@2.0")

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "Deleted release app@2.0!"
    assert not Release.objects.filter(version="app@2.0").exists()
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("Did nothing.")


def test_set_commits_with_a_single_commit_and_a_range(cli: SentryCli, acme: Acme):
    RepositoryFactory(organization=acme.organization, name="acme/app")

    single = cli(
        "releases",
        "set-commits",
        "app@3.0",
        "--commit",
        f"acme/app@{SHA_A}",
        SENTRY_PROJECT="backend",
    )
    single_heads = list(
        ReleaseHeadCommit.objects.values_list("commit__key", "previous_commit__key")
    )
    ranged = cli(
        "releases",
        "set-commits",
        "app@3.0",
        "--commit",
        f"ACME/app@{SHA_B}..{SHA_C}",
        SENTRY_PROJECT="backend",
    )

    assert single.returncode == 0, single.stderr
    assert "aaaaaaaaaaaa" in single.stdout
    assert single_heads == [(SHA_A, None)]
    assert ranged.returncode == 0, ranged.stderr
    assert "bbbbbbbbbbbb -> cccccccccccc" in ranged.stdout
    release = Release.objects.get(version="app@3.0")
    assert list(release.projects.all()) == [acme.backend]
    head = ReleaseHeadCommit.objects.select_related("commit", "previous_commit").get(
        release=release
    )
    assert (head.commit.key, head.previous_commit.key) == (SHA_C, SHA_B)
    assert list(
        ReleaseCommit.objects.filter(release=release).values_list("commit__key", flat=True)
    ) == [SHA_C]
    assert release.last_commit.key == SHA_C


def test_set_commits_with_an_unknown_repository_fails(cli: SentryCli, acme: Acme):
    RepositoryFactory(organization=acme.organization, name="acme/app")
    ReleaseFactory(organization=acme.organization, version="app@3.0", projects=[acme.backend])

    result = cli("releases", "set-commits", "app@3.0", "--commit", f"acme/nope@{SHA_A}")

    assert result.returncode == 1
    assert "Unknown repo" in result.stderr
    assert not ReleaseCommit.objects.exists()


def test_set_commits_clear(cli: SentryCli, acme: Acme):
    RepositoryFactory(organization=acme.organization, name="acme/app")
    ReleaseFactory(organization=acme.organization, version="app@3.0", projects=[acme.backend])
    cli("releases", "set-commits", "app@3.0", "--commit", f"acme/app@{SHA_A}")
    assert ReleaseCommit.objects.count() == 1

    result = cli("releases", "set-commits", "app@3.0", "--clear")

    assert result.returncode == 0, result.stderr
    assert "Clearing commits for release." in result.stdout
    release = Release.objects.get(version="app@3.0")
    assert (release.commit_count, release.last_commit) == (0, None)
    assert not ReleaseCommit.objects.exists()


def test_set_commits_auto_uses_the_origin_remote(cli: SentryCli, acme: Acme, git_repo: Path):
    RepositoryFactory(
        organization=acme.organization, name="acme/app", url="https://github.com/acme/app"
    )
    ReleaseFactory(organization=acme.organization, version="app@4.0", projects=[acme.backend])
    head = git(git_repo, "rev-parse", "HEAD")

    result = cli("releases", "set-commits", "app@4.0", "--auto", cwd=git_repo)

    assert result.returncode == 0, result.stderr
    assert head[:12] in result.stdout
    release = Release.objects.get(version="app@4.0")
    assert release.last_commit.key == head
    assert ReleaseHeadCommit.objects.get(release=release).repository.name == "acme/app"


def test_set_commits_local_sends_history_and_stops_at_the_previous_release(
    cli: SentryCli, acme: Acme, git_repo: Path
):
    ReleaseFactory(organization=acme.organization, version="app@5.0", projects=[acme.backend])
    messages = git(git_repo, "log", "--format=%s").splitlines()

    first = cli("releases", "set-commits", "app@5.0", "--local", cwd=git_repo)
    (git_repo / "next.txt").write_text("next")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "next feature")
    ReleaseFactory(organization=acme.organization, version="app@5.1", projects=[acme.backend])
    second = cli("releases", "set-commits", "app@5.1", "--local", cwd=git_repo)

    assert first.returncode == 0, first.stderr
    assert messages == ["wip #skipsentry", "add feature", "initial"]
    old = Release.objects.get(version="app@5.0")
    # sentry-cli 3.8 sends the remote's name as the repository (sentry-cli issue #3254).
    assert Repository.objects.get(organization=acme.organization, name="origin").provider is None
    assert [c.message.strip() for c in ordered_commits(old)] == ["add feature", "initial"]
    assert old.commit_count == 2
    assert old.last_commit.author.email == "ann@acme.test"
    assert second.returncode == 0, second.stderr
    new = Release.objects.get(version="app@5.1")
    assert [c.message.strip() for c in ordered_commits(new)] == ["next feature"]
    assert new.last_commit.key == git(git_repo, "rev-parse", "HEAD")


def ordered_commits(release: Release) -> list[Any]:
    links = ReleaseCommit.objects.filter(release=release).select_related("commit")
    return [link.commit for link in links.order_by("order")]


def test_deploys_new_and_list(cli: SentryCli, acme: Acme):
    ReleaseFactory(organization=acme.organization, version="app@6.0", projects=[acme.backend])

    unnamed = cli("deploys", "new", "-r", "app@6.0", "-e", "production")
    named = cli(
        "deploys",
        "new",
        "-r",
        "app@6.0",
        "-e",
        "staging",
        "-n",
        "Deploy 2",
        "-u",
        "https://ci.acme.test/2",
        "-t",
        "30",
    )
    listed = cli("deploys", "list", "-r", "app@6.0")
    missing = cli("deploys", "new", "-r", "app@9.9", "-e", "production")

    assert unnamed.returncode == 0, unnamed.stderr
    assert unnamed.stdout.strip() == "Created new deploy unnamed for 'production'"
    assert named.returncode == 0, named.stderr
    assert named.stdout.strip() == "Created new deploy Deploy 2 for 'staging'"
    assert listed.returncode == 0, listed.stderr
    assert "production" in listed.stdout
    assert "Deploy 2" in listed.stdout
    release = Release.objects.get(version="app@6.0")
    assert release.total_deploys == 2
    staging = Deploy.objects.get(environment__name="staging")
    assert release.last_deploy in Deploy.objects.filter(release=release)
    assert staging.url == "https://ci.acme.test/2"
    assert staging.date_started is not None
    assert (staging.date_finished - staging.date_started).total_seconds() == pytest.approx(
        30, abs=1
    )
    assert missing.returncode == 1
    assert Deploy.objects.count() == 2


def test_repos_list_follows_the_link_header_across_pages(cli: SentryCli, acme: Acme):
    Repository.objects.bulk_create(
        Repository(
            organization=acme.organization, name=f"acme/repo-{n:03}", provider="integrations:github"
        )
        for n in range(150)
    )
    RepositoryFactory(name="other/hidden")

    listed = cli("repos", "list")
    on_page_two = cli(
        "releases",
        "set-commits",
        "app@7.0",
        "--commit",
        f"acme/repo-149@{SHA_A}",
        SENTRY_PROJECT="backend",
    )

    assert listed.returncode == 0, listed.stderr
    names = [
        line.split("|")[1].strip()
        for line in listed.stdout.splitlines()
        if line.startswith("| acme/")
    ]
    assert names == [f"acme/repo-{n:03}" for n in range(150)]
    assert "other/hidden" not in listed.stdout
    assert on_page_two.returncode == 0, on_page_two.stderr
    assert Release.objects.get(version="app@7.0").last_commit.repository.name == "acme/repo-149"


def test_repos_list_empty(cli: SentryCli):
    result = cli("repos", "list")

    assert result.returncode == 0, result.stderr
    assert "No repos found" in result.stdout


# --- organizations list, projects list -----------------------------------------------------


def table_rows(output: str) -> list[list[str]]:
    """The cells of each body row of the table sentry-cli prints (header row first)."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in output.splitlines()
        if line.startswith("|")
    ]


def test_organizations_list_prints_the_callers_organizations(cli: SentryCli, acme: Acme):
    member = acme.organization.members.get()
    other = OrganizationFactory(slug="globex", name="Globex Corp")
    MemberFactory(organization=other, user=member.user)
    OrganizationFactory(slug="hidden", name="Not Ours")
    today = acme.organization.date_added.date().isoformat()

    result = cli("organizations", "list")

    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == [
        ["ID", "Name", "Slug", "Date Created", "Early Adopter", "Requires 2FA"],
        [str(acme.organization.pk), "Acme", "acme", today, "false", "false"],
        [str(other.pk), "Globex Corp", "globex", today, "false", "false"],
    ]


def test_projects_list_prints_the_projects_the_caller_can_access(cli: SentryCli, acme: Acme):
    OrganizationFactory(slug="globex")
    secret_team = TeamFactory(organization=acme.organization, slug="secret")
    ProjectFactory(organization=acme.organization, slug="vault", teams=[secret_team])
    team = acme.backend.teams.get()

    result = cli("projects", "list", "--org", "acme")

    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == [
        ["ID", "Slug", "Team", "Name"],
        [str(acme.backend.pk), "backend", team.name, acme.backend.name],
        [str(acme.web.pk), "web", team.name, acme.web.name],
    ]


def test_projects_list_of_an_unknown_organization_fails(cli: SentryCli):
    result = cli("projects", "list", "--org", "nope")

    assert result.returncode != 0
    assert re.search(r"does not exist|not found", result.stderr, re.IGNORECASE), result.stderr
