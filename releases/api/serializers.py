"""Output serializers for releases and what they nest, with Sentry-style batch attrs.

Nothing here queries the ORM per object: ``release_attrs`` loads every relation of a page with
one query per relation, and the serializers read the result from their context.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework import serializers

from accounts.models import User, UserEmail

from ..health import reads as health
from ..models import (
    Commit,
    CommitAuthor,
    Deploy,
    PullRequest,
    Release,
    ReleaseCommit,
    ReleaseProject,
    ReleaseProjectEnvironment,
    Repository,
)
from ..versioning import VersionInfo, version_info

# Sentry lists at most this many releases under a commit.
MAX_COMMIT_RELEASES = 1000


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z`` suffix, as DRF and Sentry write datetimes."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def gravatar_url(email: str | None) -> str:
    digest = hashlib.sha256((email or "").strip().lower().encode()).hexdigest()
    return f"{settings.GRAVATAR_BASE_URL}/avatar/{digest}?{urlencode({'s': 32, 'd': 'mm'})}"


def serialize_user(user: User, viewer: Any) -> dict[str, Any]:
    """Sentry's user object. ``emails`` are shown to the user themself and to superusers.

    Reads ``user.emails`` from a prefetch.
    """
    shows_emails = viewer is not None and (
        getattr(viewer, "pk", None) == user.pk or getattr(viewer, "is_superuser", False)
    )
    upload = user.avatar_type == User.AvatarType.UPLOAD and user.avatar_ident
    return {
        "id": str(user.pk),
        "name": user.get_display_name(),
        "username": user.username,
        "email": user.email,
        "avatarUrl": gravatar_url(user.email),
        "isActive": user.is_active,
        "hasPasswordAuth": user.password not in ("", "!") and user.has_usable_password(),
        "isManaged": user.is_managed,
        "dateJoined": iso(user.date_joined),
        "lastLogin": iso(user.last_login),
        "has2fa": user.has_2fa,
        "lastActive": iso(user.last_active),
        "isSuperuser": user.is_superuser,
        "isStaff": user.is_staff,
        "experiments": {},
        "emails": [
            {"id": str(e.pk), "email": e.email, "is_verified": e.is_verified}
            for e in user.emails.all()
        ]
        if shows_emails
        else [],
        "avatar": {
            "avatarType": user.avatar_type,
            "avatarUuid": user.avatar_ident if upload else None,
            "avatarUrl": f"{settings.AVATAR_BASE_URL}/{user.avatar_ident}/" if upload else None,
        },
    }


def serialize_repository(repo: Repository) -> dict[str, Any]:
    return {
        "id": str(repo.pk),
        "name": repo.name,
        "url": repo.url,
        "provider": repo.provider_info,
        "status": repo.status,
        "dateCreated": iso(repo.date_added),
        "integrationId": repo.integration_id,
        "externalSlug": repo.external_slug,
        "externalId": repo.external_id,
    }


def serialize_deploy(deploy: Deploy) -> dict[str, Any]:
    """Reads ``deploy.environment`` (select it with the deploy)."""
    return {
        "id": str(deploy.pk),
        "environment": deploy.environment.name if deploy.environment_id else None,
        "dateStarted": iso(deploy.date_started),
        "dateFinished": iso(deploy.date_finished),
        "name": deploy.name,
        "url": deploy.url,
    }


class AuthorResolver:
    """Resolves commit authors to organization members by e-mail, for a whole page at once.

    Matches active members whose primary or secondary address equals the author's e-mail,
    ignoring case; a primary-address match beats a secondary one. Unmatched authors become
    ``{"name", "email"}``.
    """

    def __init__(self, organization_id: int, authors: Iterable[CommitAuthor], viewer: Any):
        self.viewer = viewer
        emails = {a.email.lower() for a in authors if a.email}
        self.by_email: dict[str, User] = {}
        if not emails:
            return
        users = (
            User.objects.filter(is_active=True, memberships__organization_id=organization_id)
            .annotate(email_lower=Lower("email"))
            .filter(
                Q(email_lower__in=emails)
                | Exists(
                    UserEmail.objects.annotate(email_lower=Lower("email")).filter(
                        user=OuterRef("pk"), email_lower__in=emails
                    )
                )
            )
            .prefetch_related("emails")
            .order_by("pk")
        )
        secondary: dict[str, User] = {}
        for user in users:
            if user.email.lower() in emails:
                self.by_email.setdefault(user.email.lower(), user)
            for row in user.emails.all():
                secondary.setdefault(row.email.lower(), user)
        for email, owner in secondary.items():
            if email in emails:
                self.by_email.setdefault(email, owner)

    def resolve(self, author: CommitAuthor | None) -> dict[str, Any]:
        if author is None:
            return {}
        user = self.by_email.get(author.email.lower())
        if user is None:
            return {"name": author.name, "email": author.email}
        return serialize_user(user, self.viewer)


@dataclass
class ReleaseAttrs:
    """Everything a release's serialization needs beyond the row and its selected FKs."""

    projects: list[dict[str, Any]] = field(default_factory=list)
    new_groups: int = 0
    authors: list[dict[str, Any]] = field(default_factory=list)
    last_commit: dict[str, Any] | None = None
    first_event: datetime | None = None
    last_event: datetime | None = None
    adoption_stages: dict[str, Any] | None = None


def release_attrs(
    releases: Sequence[Release],
    *,
    viewer: Any,
    health_options: health.HealthOptions | None = None,
    adoption_stages: bool = False,
    with_events: bool = True,
    environments: Sequence[int] | None = None,
) -> dict[int, ReleaseAttrs]:
    """Batch-load the attrs of a page of releases, keyed by ``id(release)``.

    A release narrowed to one project carries ``narrowed_project_id`` (details with
    ``health=1`` and a project; flattened list rows). ``environments`` (environment ids)
    restricts first/last event, new-group counts and adoption stages to those environments.
    """
    if not releases:
        return {}
    release_ids = {r.pk for r in releases}
    organization_id = releases[0].organization_id
    now = timezone.now()

    links: dict[int, list[ReleaseProject]] = defaultdict(list)
    for link in (
        ReleaseProject.objects.filter(release_id__in=release_ids)
        .select_related("project")
        .order_by("project_id")
    ):
        links[link.release_id].append(link)

    rpe_rows: list[ReleaseProjectEnvironment] = []
    if with_events or adoption_stages or environments is not None:
        rpe = ReleaseProjectEnvironment.objects.filter(release_id__in=release_ids)
        if environments is not None:
            rpe = rpe.filter(environment_id__in=environments)
        rpe_rows = list(rpe.select_related("project").order_by("release_id", "-first_seen", "-id"))
    rows_by_release: dict[int, list[ReleaseProjectEnvironment]] = defaultdict(list)
    for row in rpe_rows:
        rows_by_release[row.release_id].append(row)

    commits = [r.last_commit for r in releases if r.last_commit_id and r.last_commit]
    commit_releases = _commit_releases(commits)
    pull_requests = (
        {
            pr.merge_commit_sha: pr
            for pr in PullRequest.objects.filter(
                organization_id=organization_id, merge_commit_sha__in={c.key for c in commits}
            ).select_related("repository", "author")
        }
        if commits
        else {}
    )

    author_ids = {int(a) for r in releases for a in (r.authors or []) if str(a).isdigit()}
    authors = CommitAuthor.objects.in_bulk(author_ids) if author_ids else {}
    resolver = AuthorResolver(
        organization_id,
        [*authors.values(), *(c.author for c in commits if c.author)]
        + [pr.author for pr in pull_requests.values() if pr.author],
        viewer,
    )

    health_by_pair: dict[tuple[int, str], dict[str, Any]] = {}
    if health_options is not None:
        pairs = [
            (link.project_id, r.version)
            for r in releases
            for link in _visible_links(r, links[r.pk])
        ]
        health_by_pair = health.health_data(
            pairs, health_options, now, release_ids={r.version: r.pk for r in releases}
        )

    result: dict[int, ReleaseAttrs] = {}
    for release in releases:
        rows = rows_by_release[release.pk]
        visible = _visible_links(release, links[release.pk])
        narrowed = getattr(release, "narrowed_project_id", None)
        if narrowed is not None:
            rows = [row for row in rows if row.project_id == narrowed]
        attrs = ReleaseAttrs()
        attrs.projects = [
            _serialize_project(link, rows, environments, health_by_pair, release.version)
            for link in visible
        ]
        if environments is not None:
            attrs.new_groups = sum(row.new_issues_count for row in rows)
        else:
            attrs.new_groups = sum(link.new_groups or 0 for link in visible)
        if with_events:
            seen = [row for row in rows if row.first_seen is not None]
            attrs.first_event = min((row.first_seen for row in seen), default=None)  # type: ignore[type-var]
            attrs.last_event = max(
                (row.last_seen for row in seen if row.last_seen is not None), default=None
            )
        if adoption_stages:
            attrs.adoption_stages = _adoption_stages(rows)
        attrs.authors = _authors(release, authors, resolver)
        if release.last_commit_id and release.last_commit:
            attrs.last_commit = _serialize_commit(
                release.last_commit, commit_releases, pull_requests, resolver
            )
        result[id(release)] = attrs
    return result


def _visible_links(release: Release, links: list[ReleaseProject]) -> list[ReleaseProject]:
    narrowed = getattr(release, "narrowed_project_id", None)
    if narrowed is None:
        return links
    return [link for link in links if link.project_id == narrowed]


def _serialize_project(
    link: ReleaseProject,
    rows: list[ReleaseProjectEnvironment],
    environments: Sequence[int] | None,
    health_by_pair: dict[tuple[int, str], dict[str, Any]],
    version: str,
) -> dict[str, Any]:
    project = link.project
    if environments is not None:
        new_groups: int | None = sum(
            row.new_issues_count for row in rows if row.project_id == project.pk
        )
    else:
        new_groups = link.new_groups
    data: dict[str, Any] = {
        "id": project.pk,
        "slug": project.slug,
        "name": project.name,
        "newGroups": new_groups,
        "platform": project.platform,
        "platforms": list(project.platforms or []),
        "hasHealthData": False,
    }
    health_data = health_by_pair.get((project.pk, version))
    if health_data is not None:
        data["hasHealthData"] = health_data["hasHealthData"]
        data["healthData"] = health_data
    return data


def _adoption_stages(rows: list[ReleaseProjectEnvironment]) -> dict[str, Any] | None:
    """Per project slug, the stage of its most recently first-seen environment row."""
    if not rows:
        return None
    stages: dict[str, Any] = {}
    for row in rows:  # ordered by first_seen descending
        stages.setdefault(
            row.project.slug,
            {"stage": row.stage, "adopted": iso(row.adopted), "unadopted": iso(row.unadopted)},
        )
    return stages


def _authors(
    release: Release, authors: dict[int, CommitAuthor], resolver: AuthorResolver
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for author_id in release.authors or []:
        author = authors.get(int(author_id)) if str(author_id).isdigit() else None
        if author is None:
            continue
        data = resolver.resolve(author)
        key = (data.get("email") or "").lower()
        if key in seen:
            continue
        seen.add(key)
        result.append(data)
    return result


def _commit_releases(commits: list[Commit]) -> dict[int, list[dict[str, Any]]]:
    if not commits:
        return {}
    by_commit: dict[int, list[dict[str, Any]]] = defaultdict(list)
    links = (
        ReleaseCommit.objects.filter(commit_id__in={c.pk for c in commits})
        .select_related("release")
        .order_by("commit_id", "release__date_added", "release_id")
    )
    for link in links:
        if len(by_commit[link.commit_id]) < MAX_COMMIT_RELEASES:
            by_commit[link.commit_id].append(serialize_release_summary(link.release))
    return by_commit


def serialize_release_summary(release: Release) -> dict[str, Any]:
    return {
        "version": release.version,
        "shortVersion": release.version,
        "ref": release.ref,
        "url": release.url,
        "dateReleased": iso(release.date_released),
        "dateCreated": iso(release.date_added),
    }


def _serialize_commit(
    commit: Commit,
    commit_releases: dict[int, list[dict[str, Any]]],
    pull_requests: dict[str | None, PullRequest],
    resolver: AuthorResolver,
) -> dict[str, Any]:
    """Sentry's commit "with releases" shape. Reads ``repository`` and ``author`` FKs."""
    pr = pull_requests.get(commit.key)
    return {
        "id": commit.key,
        "message": commit.message,
        "dateCreated": iso(commit.date_added),
        "pullRequest": _serialize_pull_request(pr, resolver) if pr else None,
        "suspectCommitType": "",
        "repository": serialize_repository(commit.repository) if commit.repository_id else {},
        "author": resolver.resolve(commit.author),
        "releases": commit_releases.get(commit.pk, []),
    }


def _serialize_pull_request(pr: PullRequest, resolver: AuthorResolver) -> dict[str, Any]:
    repo = pr.repository
    return {
        "id": pr.key,
        "title": pr.title,
        "message": pr.message,
        "dateCreated": iso(pr.date_added),
        "mergedAt": iso(pr.merged_at),
        "status": pr.status,
        "repository": serialize_repository(repo) if repo else {},
        "author": resolver.resolve(pr.author),
        "externalUrl": repo.pull_request_url(pr.key) if repo else "",
    }


class ReleaseListSerializer(serializers.ListSerializer):
    """Computes the attrs of the whole page once and shares them through the context."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        releases = list(data.all() if hasattr(data, "all") else data)
        context = cast(dict[str, Any], self.context)
        context["attrs"] = compute_attrs(releases, context)
        child = cast(serializers.Serializer, self.child)
        return [child.to_representation(release) for release in releases]


def compute_attrs(releases: Sequence[Release], context: dict[str, Any]) -> dict[int, Any]:
    request = context.get("request")
    return release_attrs(
        releases,
        viewer=getattr(request, "user", None),
        health_options=context.get("health"),
        adoption_stages=context.get("adoption_stages", False),
        with_events=context.get("with_events", True),
        environments=context.get("environments"),
    )


class ReleaseSerializer(serializers.Serializer):
    """Sentry's release object (release-api.md §2), field for field.

    Context: ``request``; ``health`` (:class:`health.HealthOptions` or None);
    ``adoption_stages`` (bool); ``with_events`` (False on write responses); ``environments``
    (environment ids or None); ``current_project_meta`` (dict, details only).
    """

    id = serializers.IntegerField()
    version = serializers.CharField()
    status = serializers.CharField(source="status_name")
    shortVersion = serializers.CharField(source="version")
    versionInfo = serializers.SerializerMethodField()
    ref = serializers.CharField()
    url = serializers.CharField()
    dateReleased = serializers.DateTimeField(source="date_released")
    dateCreated = serializers.DateTimeField(source="date_added")
    # A field named like Serializer.data: the metaclass moves it into _declared_fields.
    data = serializers.JSONField()  # type: ignore[assignment]
    newGroups = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    commitCount = serializers.SerializerMethodField()
    lastCommit = serializers.SerializerMethodField()
    deployCount = serializers.SerializerMethodField()
    lastDeploy = serializers.SerializerMethodField()
    authors = serializers.SerializerMethodField()
    projects = serializers.SerializerMethodField()
    firstEvent = serializers.SerializerMethodField()
    lastEvent = serializers.SerializerMethodField()
    currentProjectMeta = serializers.SerializerMethodField()
    userAgent = serializers.CharField(source="user_agent")

    class Meta:
        list_serializer_class = ReleaseListSerializer

    def _attrs(self, release: Release) -> ReleaseAttrs:
        context = cast(dict[str, Any], self.context)
        attrs: dict[int, ReleaseAttrs] = context.setdefault("attrs", {})
        if id(release) not in attrs:
            # A single release (details, writes): compute its attrs on their own.
            attrs.update(compute_attrs([release], context))
        return attrs[id(release)]

    def to_representation(self, instance: Release) -> dict[str, Any]:
        data = super().to_representation(instance)
        if self.context.get("adoption_stages"):
            data["adoptionStages"] = self._attrs(instance).adoption_stages
        return data

    def get_versionInfo(self, release: Release) -> VersionInfo | None:
        return version_info(release.version)

    def get_newGroups(self, release: Release) -> int:
        return self._attrs(release).new_groups

    def get_owner(self, release: Release) -> dict[str, Any] | None:
        if release.owner_id is None or release.owner is None:
            return None
        request = self.context.get("request")
        return serialize_user(release.owner, getattr(request, "user", None))

    def get_commitCount(self, release: Release) -> int:
        return release.commit_count or 0

    def get_lastCommit(self, release: Release) -> dict[str, Any] | None:
        return self._attrs(release).last_commit

    def get_deployCount(self, release: Release) -> int:
        return release.total_deploys or 0

    def get_lastDeploy(self, release: Release) -> dict[str, Any] | None:
        if release.last_deploy_id is None or release.last_deploy is None:
            return None
        return serialize_deploy(release.last_deploy)

    def get_authors(self, release: Release) -> list[dict[str, Any]]:
        return self._attrs(release).authors

    def get_projects(self, release: Release) -> list[dict[str, Any]]:
        return self._attrs(release).projects

    def get_firstEvent(self, release: Release) -> str | None:
        return iso(self._attrs(release).first_event)

    def get_lastEvent(self, release: Release) -> str | None:
        return iso(self._attrs(release).last_event)

    def get_currentProjectMeta(self, release: Release) -> dict[str, Any]:
        return self.context.get("current_project_meta") or {}


def serialize_commits(commits: Sequence[Commit], viewer: Any) -> list[dict[str, Any]]:
    """Sentry's plain commit objects (no ``releases``) for a page, authors and PRs in batch.

    Reads each commit's ``repository`` and ``author`` (select them with the commits).
    """
    if not commits:
        return []
    organization_id = commits[0].organization_id
    pull_requests = {
        pr.merge_commit_sha: pr
        for pr in PullRequest.objects.filter(
            organization_id=organization_id, merge_commit_sha__in={c.key for c in commits}
        ).select_related("repository", "author")
    }
    resolver = AuthorResolver(
        organization_id,
        [c.author for c in commits if c.author]
        + [pr.author for pr in pull_requests.values() if pr.author],
        viewer,
    )
    result = []
    for commit in commits:
        data = _serialize_commit(commit, {}, pull_requests, resolver)
        del data["releases"]
        result.append(data)
    return result
