"""Multi-row writes: creating releases, attaching commits, recording deploys."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Organization

from .models import (
    Commit,
    CommitAuthor,
    CommitFileChange,
    Deploy,
    Environment,
    IssueGroup,
    Project,
    Release,
    ReleaseCommit,
    ReleaseHeadCommit,
    ReleaseProject,
    ReleaseProjectEnvironment,
    Repository,
    SessionRollup,
)
from .versioning import semver_columns

SKIP_MARKER = "#skipsentry"
MAX_AUTHOR_EMAIL = 75


# Health data this recent keeps a release from being deleted (docs/api.md §4.4).
HEALTH_DATA_DAYS = timedelta(days=90)


class DomainError(Exception):
    """A write the domain refuses; the message is what the client is told.

    The API's exception handler maps each subclass to its status code.
    """

    default_message = ""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class ReleaseConflict(DomainError):
    """A write lost a uniqueness race (docs/api.md §5.6 step 3): 409."""

    default_message = "Could not create the release it conflicts with existing data"


class RepositoryConflict(DomainError):
    """A repository of that name exists already: 409."""

    default_message = "A repository with that name already exists"


class ReleaseInUse(DomainError):
    """DELETE refused: the release still has issues or health data (docs/api.md §4.4): 400."""


@dataclass(frozen=True)
class RefData:
    """One ``refs`` item: the head commit of a repository, and optionally the previous one."""

    repository: str
    commit: str
    previous_commit: str | None = None


@dataclass(frozen=True)
class CommitData:
    """One commit as clients send it (``commits`` items of POST/PUT)."""

    id: str
    repository: str | None = None
    message: str | None = None
    author_name: str | None = None
    author_email: str | None = None
    timestamp: datetime | None = None
    # (path, type) pairs: the files the commit added (A), deleted (D) or modified (M).
    patch_set: tuple[tuple[str, str], ...] = ()


@transaction.atomic
def release_create(
    *,
    organization: Organization,
    version: str,
    projects: Sequence[Project] = (),
    user_agent: str | None = None,
    defaults: dict[str, Any] | None = None,
    status: int | None = None,
) -> tuple[Release, bool, list[Project]]:
    """Get or create a release, apply ``status`` and link ``projects`` (docs/api.md §5.6).

    Returns the release, whether it was created, and the projects newly linked.
    ``defaults`` (ref, url, date_released, owner, date_added) apply on creation only; ``status``
    also changes an existing release (sentry-cli archives and restores through this).
    A lost uniqueness race that ``get_or_create`` cannot resolve raises :class:`ReleaseConflict`.
    """
    creation = {
        **semver_columns(version),
        "user_agent": (user_agent or None) and user_agent[:256],
        **(defaults or {}),
    }
    if status is not None:
        creation["status"] = status
    try:
        release, created = Release.objects.get_or_create(
            organization=organization, version=version, defaults=creation
        )
    except IntegrityError as exc:
        raise ReleaseConflict() from exc
    if not created and status is not None and release.status != status:
        release.status = status
        release.save(update_fields=["status"])
    linked = set(
        ReleaseProject.objects.filter(release=release).values_list("project_id", flat=True)
    )
    new_projects = [p for p in dict.fromkeys(projects) if p.pk not in linked]
    ReleaseProject.objects.bulk_create(
        [ReleaseProject(release=release, project=p) for p in new_projects],
        ignore_conflicts=True,
    )
    return release, created, new_projects


@transaction.atomic
def release_update(
    *,
    release: Release,
    ref: str | None = None,
    url: str | None = None,
    date_released: datetime | None = None,
    status: int | None = None,
) -> Release:
    """Apply PUT's scalar fields (docs/api.md §4.2 step 4).

    As in Sentry, empty values do not clear ``ref``, ``url`` or ``dateReleased``. Unlike
    Sentry, ``status`` open un-archives (docs/decisions.md).
    """
    changes: dict[str, Any] = {"ref": ref, "url": url, "date_released": date_released}
    changes = {field: value for field, value in changes.items() if value}
    if status is not None:
        changes["status"] = status
    for field, value in changes.items():
        setattr(release, field, value)
    if changes:
        release.save(update_fields=list(changes))
    return release


@transaction.atomic
def release_set_commits_and_refs(
    *,
    release: Release,
    commits: Sequence[CommitData] | None = None,
    refs: Sequence[RefData] | None = None,
    head_commits: Sequence[RefData] | None = None,
) -> None:
    """The ``commits``, ``refs`` and ``headCommits`` of POST and PUT (docs/api.md §4.2).

    Non-empty ``commits`` replace the release's commits. ``refs`` (or, when they are empty,
    the deprecated ``headCommits``) must name existing active repositories; with no provider
    integration to fetch the range from, the head commit (and the previous one) of each
    repository is recorded, and the heads become the release's commits unless ``commits``
    were given too. An explicit empty ``refs`` clears the release's commits.
    """
    if commits:
        release_set_commits(release=release, commits=commits)
    if not refs and head_commits:
        refs = head_commits
    if refs is None:
        return
    if not refs:
        release_set_commits(release=release, commits=[])
        ReleaseHeadCommit.objects.filter(release=release).delete()
        return
    matches = _repositories_by_name(release.organization_id, [r.repository for r in refs])
    missing = [name for name, repo in matches.items() if repo is None]
    if missing:
        raise ValidationError({"refs": [f"Invalid repository names: {','.join(missing)}"]})
    repositories = {name: repo for name, repo in matches.items() if repo is not None}
    if not commits:
        release_set_commits(
            release=release,
            commits=[
                CommitData(id=ref.commit, repository=repositories[ref.repository].name)
                for ref in refs
            ],
        )
    for ref in refs:
        repository = repositories[ref.repository]
        previous = None
        if ref.previous_commit:
            previous = _commit_get_or_create(repository, ref.previous_commit)
        ReleaseHeadCommit.objects.update_or_create(
            release=release,
            repository=repository,
            defaults={
                "commit": _commit_get_or_create(repository, ref.commit),
                "previous_commit": previous,
            },
        )


def _repositories_by_name(
    organization_id: int, names: list[str], *, active_only: bool = True
) -> dict[str, Repository | None]:
    """Repositories by name; an exact match wins over one that differs only in case.

    sentry-cli accepts ``--commit ACME/app@…`` for a repository named ``acme/app`` and sends
    the name as typed, so the server matches names case-insensitively too.
    """
    lowered = {name.lower() for name in names}
    candidates = Repository.objects.annotate(name_lower=Lower("name")).filter(
        organization_id=organization_id, name_lower__in=lowered
    )
    if active_only:
        candidates = candidates.filter(status=Repository.Status.ACTIVE)
    exact: dict[str, Repository] = {}
    folded: dict[str, Repository] = {}
    for repo in candidates.order_by("pk"):
        exact[repo.name] = repo
        folded.setdefault(repo.name.lower(), repo)
    return {name: exact.get(name) or folded.get(name.lower()) for name in dict.fromkeys(names)}


def _repositories_for_commits(organization_id: int, names: list[str]) -> dict[str, Repository]:
    """The repositories commits name, created (without a provider) when none matches."""
    found = _repositories_by_name(organization_id, names, active_only=False)
    missing = [name for name, repo in found.items() if repo is None]
    if missing:
        Repository.objects.bulk_create(
            [Repository(organization_id=organization_id, name=name) for name in missing],
            ignore_conflicts=True,  # created meanwhile by a concurrent request: reuse it
        )
        found = _repositories_by_name(organization_id, names, active_only=False)
    return {name: repo for name, repo in found.items() if repo is not None}


def _authors_for_commits(
    organization_id: int, commits: list[CommitData]
) -> dict[str, CommitAuthor]:
    """Commit authors by e-mail, upserted; a name given with a commit replaces the stored one."""
    names: dict[str, str] = {}
    for data in commits:
        email = _author_email(data.author_name, data.author_email)
        if email and (email not in names or data.author_name):
            names[email] = (data.author_name or "")[:128]
    if not names:
        return {}
    named = [e for e, n in names.items() if n]
    CommitAuthor.objects.bulk_create(
        [CommitAuthor(organization_id=organization_id, email=e, name=names[e]) for e in named],
        update_conflicts=True,
        unique_fields=["organization", "email"],
        update_fields=["name"],
    )
    CommitAuthor.objects.bulk_create(
        [CommitAuthor(organization_id=organization_id, email=e) for e in names if not names[e]],
        ignore_conflicts=True,
    )
    return {
        author.email: author
        for author in CommitAuthor.objects.filter(organization_id=organization_id, email__in=names)
    }


def _commit_get_or_create(repository: Repository, key: str) -> Commit:
    commit, _ = Commit.objects.get_or_create(
        repository=repository, key=key, defaults={"organization_id": repository.organization_id}
    )
    return commit


@transaction.atomic
def release_delete(*, release: Release) -> None:
    """Delete a release unless issues or recent health data refer to it (docs/api.md §4.4)."""
    has_new_issues = (
        IssueGroup.objects.filter(first_release=release).exists()
        or ReleaseProject.objects.filter(release=release, new_groups__gt=0).exists()
        or ReleaseProjectEnvironment.objects.filter(
            release=release, new_issues_count__gt=0
        ).exists()
    )
    if has_new_issues:
        raise ReleaseInUse("This release is referenced by active issues and cannot be removed.")
    since = (timezone.now() - HEALTH_DATA_DAYS).replace(minute=0, second=0, microsecond=0)
    if SessionRollup.objects.filter(release=release, hour__gte=since).exists():
        raise ReleaseInUse("This release has health data and cannot be removed.")
    release.delete()


@transaction.atomic
def repository_create(
    *,
    organization: Organization,
    name: str,
    url: str | None = None,
    provider: str | None = None,
) -> Repository:
    """Register a repository; a taken name raises :class:`RepositoryConflict`."""
    try:
        with transaction.atomic():
            return Repository.objects.create(
                organization=organization, name=name, url=url or None, provider=provider
            )
    except IntegrityError as exc:
        raise RepositoryConflict() from exc


def _author_email(name: str | None, email: str | None) -> str | None:
    if not email and name:
        email = re.sub(r"[^a-zA-Z0-9\-_.]", "", name).lower() + "@localhost"
    return email[:MAX_AUTHOR_EMAIL] if email else None


@transaction.atomic
def release_set_commits(*, release: Release, commits: Iterable[CommitData]) -> None:
    """Replace the release's commits (docs/api.md §4.3) and its stored counters.

    Commits whose message holds ``#skipsentry`` are dropped; the newest becomes ``lastCommit``.
    A provided message, author or timestamp overwrites the stored one. A fixed number of
    queries, whatever the number of commits.
    """
    # Concurrent replacements of one release's commits run one after the other.
    list(Release.objects.select_for_update().filter(pk=release.pk).values_list("pk"))
    organization_id = release.organization_id
    kept = [c for c in commits if SKIP_MARKER not in (c.message or "")]
    oldest = datetime.min.replace(tzinfo=UTC)
    kept.sort(key=lambda c: c.timestamp or oldest, reverse=True)
    default_repository = f"organization-{organization_id}"
    repositories = _repositories_for_commits(
        organization_id, [c.repository or default_repository for c in kept]
    )
    authors = _authors_for_commits(organization_id, kept)

    # What each commit says, newest first, one per (repository id, key).
    wanted: dict[tuple[int, str], dict[str, Any]] = {}
    for data in kept:
        repository = repositories[data.repository or default_repository]
        email = _author_email(data.author_name, data.author_email)
        wanted.setdefault(
            (repository.pk, data.id),
            {
                "message": data.message,
                "author_id": authors[email].pk if email else None,
                "date_added": data.timestamp,
            },
        )
    stored = _stored_commits(wanted)
    changed = []
    for key, commit in stored.items():
        updates = {
            field: value
            for field, value in wanted[key].items()
            if value is not None and value != getattr(commit, field)
        }
        for field, value in updates.items():
            setattr(commit, field, value)
        if updates:
            changed.append(commit)
    Commit.objects.bulk_update(changed, ["message", "author_id", "date_added"])
    now = timezone.now()
    new = [
        Commit(
            organization_id=organization_id,
            repository_id=repository_id,
            key=commit_key,
            message=fields["message"],
            author_id=fields["author_id"],
            date_added=fields["date_added"] or now,
        )
        for (repository_id, commit_key), fields in wanted.items()
        if (repository_id, commit_key) not in stored
    ]
    Commit.objects.bulk_create(new, ignore_conflicts=True)  # a concurrent insert is reused
    stored = _stored_commits(wanted) if new else stored

    _store_file_changes(organization_id, kept, repositories, default_repository, stored)

    ReleaseCommit.objects.filter(release=release).delete()
    ReleaseCommit.objects.bulk_create(
        [
            ReleaseCommit(release=release, commit=stored[key], order=order)
            for order, key in enumerate(wanted)
        ]
    )
    release_refresh_commits(release=release)
    heads: dict[int, Commit] = {}
    for key in wanted:  # newest first
        heads.setdefault(key[0], stored[key])
    existing = set(
        ReleaseHeadCommit.objects.filter(release=release).values_list("repository_id", flat=True)
    )
    ReleaseHeadCommit.objects.bulk_create(
        [
            ReleaseHeadCommit(release=release, repository_id=repository_id, commit=commit)
            for repository_id, commit in heads.items()
            if repository_id not in existing
        ]
    )


def _store_file_changes(
    organization_id: int,
    commits: Iterable[CommitData],
    repositories: Mapping[str, Repository],
    default_repository: str,
    stored: Mapping[tuple[int, str], Commit],
) -> None:
    """Record each commit's ``patch_set`` in one insert; files already recorded are kept,
    as Sentry keeps them."""
    changes: dict[tuple[int, str], CommitFileChange] = {}
    for data in commits:
        commit = stored[(repositories[data.repository or default_repository].pk, data.id)]
        for path, kind in data.patch_set:
            changes.setdefault(
                (commit.pk, path),
                CommitFileChange(
                    organization_id=organization_id, commit=commit, filename=path, type=kind
                ),
            )
    if changes:
        CommitFileChange.objects.bulk_create(changes.values(), ignore_conflicts=True)


def _stored_commits(wanted: Mapping[tuple[int, str], object]) -> dict[tuple[int, str], Commit]:
    """The stored commits among ``wanted``, by (repository id, key).

    One query per :data:`REPOSITORIES_PER_QUERY` repositories: SQLite refuses an expression
    tree deeper than 1,000 ("Expression tree is too large"), which one ``OR`` per repository
    reaches with commits over about 1,000 repositories.
    """
    if not wanted:
        return {}
    by_repository: dict[int, list[str]] = {}
    for repository_id, key in wanted:
        by_repository.setdefault(repository_id, []).append(key)
    items = list(by_repository.items())
    found: dict[tuple[int, str], Commit] = {}
    for start in range(0, len(items), REPOSITORIES_PER_QUERY):
        lookup = Q()
        for repository_id, keys in items[start : start + REPOSITORIES_PER_QUERY]:
            lookup |= Q(repository_id=repository_id, key__in=keys)
        found.update({(c.repository_id, c.key): c for c in Commit.objects.filter(lookup)})
    return found


#: Repositories per commit lookup (see :func:`_stored_commits`).
REPOSITORIES_PER_QUERY = 200


@transaction.atomic
def release_refresh_commits(*, release: Release) -> None:
    """Recount ``commitCount``, ``lastCommit`` (order 0) and ``authors`` from the links."""
    links = list(
        ReleaseCommit.objects.filter(release=release)
        .select_related("commit")
        .order_by("order", "pk")
    )
    release.commit_count = len(links)
    release.last_commit = links[0].commit if links else None
    release.authors = list(
        dict.fromkeys(str(link.commit.author_id) for link in links if link.commit.author_id)
    )
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
    projects: Sequence[Project] | None = None,
) -> Deploy:
    """Record a deploy and keep the release's ``deployCount`` and ``lastDeploy`` current.

    The release is then known in that environment for ``projects`` (default: all of the
    release's projects), as in Sentry: ``?environment=`` finds it and adoption can rank it.
    """
    env, _ = Environment.objects.get_or_create(
        organization_id=release.organization_id, name=environment
    )
    project_ids = (
        [p.pk for p in projects]
        if projects
        else list(release.projects.values_list("pk", flat=True))
    )
    ReleaseProjectEnvironment.objects.bulk_create(
        [
            ReleaseProjectEnvironment(release=release, project_id=pk, environment=env)
            for pk in project_ids
        ],
        ignore_conflicts=True,
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
    """Recount ``deployCount`` and repoint ``lastDeploy`` (the latest recorded, as Sentry)."""
    # Under a row lock, so that concurrent deploys do not lose an increment.
    locked = Release.objects.select_for_update().get(pk=release.pk)
    deploys = Deploy.objects.filter(release=locked)
    locked.total_deploys = deploys.count()
    locked.last_deploy = deploys.order_by("-pk").first()
    locked.save(update_fields=["total_deploys", "last_deploy"])
    release.total_deploys, release.last_deploy = locked.total_deploys, locked.last_deploy
