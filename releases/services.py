"""Multi-row writes: creating releases, attaching commits, recording deploys."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization

from .models import (
    Commit,
    CommitAuthor,
    Deploy,
    Environment,
    Project,
    Release,
    ReleaseCommit,
    ReleaseProject,
    Repository,
)
from .versioning import semver_columns

SKIP_MARKER = "#skipsentry"
MAX_AUTHOR_EMAIL = 75


@dataclass(frozen=True)
class CommitData:
    """One commit as clients send it (``commits`` items of POST/PUT)."""

    id: str
    repository: str | None = None
    message: str | None = None
    author_name: str | None = None
    author_email: str | None = None
    timestamp: datetime | None = None


@transaction.atomic
def release_create(
    *,
    organization: Organization,
    version: str,
    projects: Sequence[Project] = (),
    user_agent: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> tuple[Release, bool, list[Project]]:
    """Get or create a release and link ``projects``.

    Returns the release, whether it was created, and the projects newly linked.
    ``defaults`` (ref, url, date_released, owner, status, date_added) apply on creation only.
    """
    release, created = Release.objects.get_or_create(
        organization=organization,
        version=version,
        defaults={
            **semver_columns(version),
            "user_agent": (user_agent or None) and user_agent[:256],
            **(defaults or {}),
        },
    )
    linked = set(
        ReleaseProject.objects.filter(release=release).values_list("project_id", flat=True)
    )
    new_projects = [p for p in dict.fromkeys(projects) if p.pk not in linked]
    ReleaseProject.objects.bulk_create(
        [ReleaseProject(release=release, project=p) for p in new_projects],
        ignore_conflicts=True,
    )
    return release, created, new_projects


def _author_email(name: str | None, email: str | None) -> str | None:
    if not email and name:
        email = re.sub(r"[^a-zA-Z0-9\-_.]", "", name).lower() + "@localhost"
    return email[:MAX_AUTHOR_EMAIL] if email else None


@transaction.atomic
def release_set_commits(*, release: Release, commits: Iterable[CommitData]) -> None:
    """Replace the release's commits (release-api.md §4.3) and its stored counters.

    Commits whose message holds ``#skipsentry`` are dropped; the newest becomes ``lastCommit``.
    """
    organization_id = release.organization_id
    kept = [c for c in commits if SKIP_MARKER not in (c.message or "")]
    oldest = datetime.min.replace(tzinfo=UTC)
    kept.sort(key=lambda c: c.timestamp or oldest, reverse=True)

    repositories: dict[str, Repository] = {}
    authors: dict[str, CommitAuthor] = {}
    rows: list[Commit] = []
    for data in kept:
        repo_name = data.repository or f"organization-{organization_id}"
        if repo_name not in repositories:
            repositories[repo_name], _ = Repository.objects.get_or_create(
                organization_id=organization_id, name=repo_name
            )
        author = None
        email = _author_email(data.author_name, data.author_email)
        if email:
            author = authors.get(email)
            if author is None:
                author, created = CommitAuthor.objects.get_or_create(
                    organization_id=organization_id,
                    email=email,
                    defaults={"name": (data.author_name or "")[:128]},
                )
                if not created and data.author_name and author.name != data.author_name:
                    author.name = data.author_name[:128]
                    author.save(update_fields=["name"])
                authors[email] = author
        commit, created = Commit.objects.get_or_create(
            repository=repositories[repo_name],
            key=data.id,
            defaults={
                "organization_id": organization_id,
                "message": data.message,
                "author": author,
                "date_added": data.timestamp or timezone.now(),
            },
        )
        if not created:
            changed = {
                "message": data.message,
                "author": author,
                "date_added": data.timestamp,
            }
            for field, value in changed.items():
                if value is not None:
                    setattr(commit, field, value)
            commit.save()
        rows.append(commit)

    unique = list({c.pk: c for c in rows}.values())
    ReleaseCommit.objects.filter(release=release).delete()
    ReleaseCommit.objects.bulk_create(
        [ReleaseCommit(release=release, commit=c, order=i) for i, c in enumerate(unique)]
    )
    release.commit_count = len(unique)
    release.last_commit = unique[0] if unique else None
    release.authors = list(dict.fromkeys(str(c.author_id) for c in unique if c.author_id))
    release.save(update_fields=["commit_count", "last_commit", "authors"])


@transaction.atomic
def deploy_create(
    *,
    release: Release,
    environment: str,
    name: str | None = None,
    url: str | None = None,
    date_started: datetime | None = None,
    date_finished: datetime | None = None,
) -> Deploy:
    """Record a deploy and keep the release's ``deployCount`` and ``lastDeploy`` current."""
    env, _ = Environment.objects.get_or_create(
        organization_id=release.organization_id, name=environment
    )
    deploy = Deploy.objects.create(
        organization_id=release.organization_id,
        release=release,
        environment=env,
        name=name,
        url=url,
        date_started=date_started,
        date_finished=date_finished or timezone.now(),
    )
    release_refresh_deploys(release=release)
    return deploy


@transaction.atomic
def release_refresh_deploys(*, release: Release) -> None:
    """Recount ``deployCount`` and repoint ``lastDeploy`` (the latest finished deploy)."""
    # Under a row lock, so that concurrent deploys do not lose an increment.
    locked = Release.objects.select_for_update().get(pk=release.pk)
    deploys = Deploy.objects.filter(release=locked)
    locked.total_deploys = deploys.count()
    locked.last_deploy = deploys.order_by("-date_finished", "-pk").first()
    locked.save(update_fields=["total_deploys", "last_deploy"])
    release.total_deploys, release.last_deploy = locked.total_deploys, locked.last_deploy
