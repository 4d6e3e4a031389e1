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
from django.db.models import (
    CharField,
    DateTimeField,
    Exists,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework import serializers

from accounts.models import User, UserEmail

from ..health.reads import HealthQuery, ReleaseHealth, health_data
from ..models import (
    Commit,
    CommitAuthor,
    Deploy,
    Project,
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


def serialize_user(
    user: User, viewer: Any, emails: Sequence[UserEmail] | None = None
) -> dict[str, Any]:
    """Sentry's user object. ``emails`` are shown to the user themself and to superusers.

    ``emails`` are the user's addresses, else read from a prefetch of ``user.emails``.
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
        "isSuspended": False,  # nothing suspends users here; inactive ones are isActive false
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
            for e in (user.emails.all() if emails is None else emails)
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
        #: Each matched user's addresses, in id order.
        self.emails: dict[int, list[UserEmail]] = {}
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
            .order_by("pk", "emails__id")
        )
        # The users and their addresses in one query: a LEFT JOIN, one row per address.
        fields = [f.attname for f in User._meta.concrete_fields]
        pk_index = fields.index(User._meta.pk.attname)
        found: dict[int, User] = {}
        secondary: dict[str, User] = {}
        for row in users.values_list(*fields, "emails__id", "emails__email", "emails__is_verified"):
            values, (email_id, address, verified) = row[: len(fields)], row[len(fields) :]
            user = found.get(values[pk_index]) or User.from_db(users.db, fields, values)
            found[user.pk] = user
            addresses = self.emails.setdefault(user.pk, [])
            if email_id is not None:
                addresses.append(
                    UserEmail(pk=email_id, user_id=user.pk, email=address, is_verified=verified)
                )
                secondary.setdefault(address.lower(), user)
        for user in found.values():
            if user.email.lower() in emails:
                self.by_email.setdefault(user.email.lower(), user)
        for email, owner in secondary.items():
            if email in emails:
                self.by_email.setdefault(email, owner)

    def resolve(self, author: CommitAuthor | None) -> dict[str, Any]:
        if author is None:
            return {}
        user = self.by_email.get(author.email.lower())
        if user is None:
            return {"name": author.name, "email": author.email}
        return serialize_user(user, self.viewer, self.emails[user.pk])


@dataclass(frozen=True)
class ReleaseEntry:
    """A release as one item of an answer.

    ``project_id`` narrows it to one of its projects: flattened list rows, and the details
    endpoint with ``health`` and a ``project``.
    """

    release: Release
    project_id: int | None = None

    @property
    def key(self) -> tuple[int, int | None]:
        return self.release.pk, self.project_id


@dataclass(frozen=True)
class ProjectMeta:
    """``currentProjectMeta`` of the details endpoint (docs/api.md §1.5)."""

    next_version: str | None
    prev_version: str | None
    first_version: str | None
    last_version: str | None
    sessions_lower_bound: datetime | None
    sessions_upper_bound: datetime | None


@dataclass(frozen=True)
class ReleaseOutput:
    """What a release answer includes, from the endpoint's parameters.

    ``health`` reads release health for every project entry (None: none);
    ``environment_ids`` restricts new groups, first/last event and adoption stages to those
    environments; ``with_events`` is False on write answers; ``current_project`` is the
    details endpoint's ``currentProjectMeta``.
    """

    health: HealthQuery | None = None
    adoption_stages: bool = False
    with_events: bool = True
    environment_ids: tuple[int, ...] | None = None
    current_project: ProjectMeta | None = None


@dataclass(frozen=True)
class ProjectAttrs:
    project: Project
    new_groups: int | None
    health: ReleaseHealth | None


@dataclass
class ReleaseAttrs:
    """Everything a release's serialization needs beyond the row and its selected FKs."""

    projects: list[ProjectAttrs] = field(default_factory=list)
    new_groups: int = 0
    authors: list[dict[str, Any]] = field(default_factory=list)
    last_commit: dict[str, Any] | None = None
    first_event: datetime | None = None
    last_event: datetime | None = None
    #: Per project slug, the row of its most recently first-seen environment.
    adoption_stages: dict[str, ReleaseProjectEnvironment] | None = None


def release_attrs(
    entries: Sequence[ReleaseEntry],
    output: ReleaseOutput,
    *,
    viewer: Any,
    projects: QuerySet[Project],
) -> dict[tuple[int, int | None], ReleaseAttrs]:
    """Batch-load the attrs of a page of releases, keyed by :attr:`ReleaseEntry.key`.

    ``projects`` are the projects the caller may see (``Access.accessible_projects()``):
    everything derived from a release's projects (``projects``, their health, ``newGroups``,
    first and last event, adoption stages, the releases of the last commit) counts those only
    (docs/api.md §6.5). It is a subquery of the queries below, never a query of its own.

    One query per relation whatever the page size, plus health's fixed count with
    ``output.health``.
    """
    if not entries:
        return {}
    releases = [entry.release for entry in entries]
    release_ids = {r.pk for r in releases}
    organization_id = releases[0].organization_id
    environments = output.environment_ids

    links, rows_by_release = _project_rows(
        release_ids,
        projects,
        with_environments=(
            output.with_events or output.adoption_stages or environments is not None
        ),
        environments=environments,
    )

    commits = [r.last_commit for r in releases if r.last_commit_id and r.last_commit]
    commit_releases = _commit_releases(commits, projects)
    pull_requests = _pull_requests(organization_id, commits)

    author_ids = {int(a) for r in releases for a in (r.authors or []) if str(a).isdigit()}
    authors = CommitAuthor.objects.in_bulk(author_ids) if author_ids else {}
    resolver = AuthorResolver(
        organization_id,
        [*authors.values(), *(c.author for c in commits if c.author)]
        + [pr.author for pr in pull_requests.values() if pr.author],
        viewer,
    )

    def visible(entry: ReleaseEntry) -> list[ReleaseProject]:
        mine = links[entry.release.pk]
        if entry.project_id is None:
            return mine
        return [link for link in mine if link.project_id == entry.project_id]

    health: dict[tuple[int, int], ReleaseHealth] = {}
    if output.health is not None:
        pairs = {(link.project_id, link.release_id) for e in entries for link in visible(e)}
        health = health_data(pairs, output.health, timezone.now())

    result: dict[tuple[int, int | None], ReleaseAttrs] = {}
    for entry in entries:
        release = entry.release
        rows = rows_by_release[release.pk]
        if entry.project_id is not None:
            rows = [row for row in rows if row.project_id == entry.project_id]
        attrs = ReleaseAttrs()
        for link in visible(entry):
            if environments is not None:
                new_groups: int | None = sum(
                    row.new_issues_count for row in rows if row.project_id == link.project_id
                )
            else:
                new_groups = link.new_groups
            attrs.projects.append(
                ProjectAttrs(link.project, new_groups, health.get((link.project_id, release.pk)))
            )
        if environments is not None:
            attrs.new_groups = sum(row.new_issues_count for row in rows)
        else:
            attrs.new_groups = sum(p.new_groups or 0 for p in attrs.projects)
        if output.with_events:
            seen = [row for row in rows if row.first_seen is not None]
            attrs.first_event = min((row.first_seen for row in seen), default=None)  # type: ignore[type-var]
            attrs.last_event = max(
                (row.last_seen for row in seen if row.last_seen is not None), default=None
            )
        if output.adoption_stages and rows:
            attrs.adoption_stages = {}
            for row in rows:  # ordered by first_seen descending
                attrs.adoption_stages.setdefault(row.project.slug, row)
        attrs.authors = _authors(release, authors, resolver)
        if release.last_commit_id and release.last_commit:
            attrs.last_commit = _serialize_commit(
                release.last_commit, commit_releases, pull_requests, resolver
            )
        result[entry.key] = attrs
    return result


_LINK, _ENVIRONMENT = 0, 1
NEVER = datetime.min.replace(tzinfo=UTC)


def _project_rows(
    release_ids: set[int],
    projects: QuerySet[Project],
    *,
    with_environments: bool,
    environments: tuple[int, ...] | None,
) -> tuple[dict[int, list[ReleaseProject]], dict[int, list[ReleaseProjectEnvironment]]]:
    """The releases' links to ``projects`` (with the project), ordered by project id, and,
    ``with_environments``, their environment rows (``environments`` only, when given; with the
    project's slug), newest first seen first: one query, a ``UNION ALL`` of both tables.
    """
    visible_ids = projects.values("pk")
    text, moment = CharField(), DateTimeField()

    def null(field: Any) -> Value:
        return Value(None, output_field=field)

    link_arm = (
        ReleaseProject.objects.filter(release_id__in=release_ids, project_id__in=visible_ids)
        .annotate(
            arm=Value(_LINK),
            n_seen=null(moment),
            n_last=null(moment),
            n_adopted=null(moment),
            n_unadopted=null(moment),
        )
        .values_list(
            "arm",
            "id",
            "release_id",
            "project_id",
            "new_groups",
            "project__slug",
            "project__name",
            "project__platform",
            "project__platforms",
            "n_seen",
            "n_last",
            "n_adopted",
            "n_unadopted",
        )
        .order_by()
    )
    rows: Any = link_arm
    if with_environments:
        rpe = ReleaseProjectEnvironment.objects.filter(
            release_id__in=release_ids, project_id__in=visible_ids
        )
        if environments is not None:
            rpe = rpe.filter(environment_id__in=environments)
        environment_arm = (
            rpe.annotate(
                arm=Value(_ENVIRONMENT),
                n_name=null(text),
                n_platform=null(text),
                n_platforms=null(JSONField()),
            )
            .values_list(
                "arm",
                "id",
                "release_id",
                "project_id",
                "new_issues_count",
                "project__slug",
                "n_name",
                "n_platform",
                "n_platforms",
                "first_seen",
                "last_seen",
                "adopted",
                "unadopted",
            )
            .order_by()
        )
        rows = link_arm.union(environment_arm, all=True)
    links: dict[int, list[ReleaseProject]] = defaultdict(list)
    by_release: dict[int, list[ReleaseProjectEnvironment]] = defaultdict(list)
    for arm, pk, release_id, project_id, count, slug, name, platform, platforms, *dates in rows:
        if arm == _LINK:
            project = Project(
                pk=project_id, slug=slug, name=name, platform=platform, platforms=platforms
            )
            link = ReleaseProject(pk=pk, release_id=release_id, project=project, new_groups=count)
            links[release_id].append(link)
        else:
            first_seen, last_seen, adopted, unadopted = dates
            row = ReleaseProjectEnvironment(
                pk=pk,
                release_id=release_id,
                project=Project(pk=project_id, slug=slug),
                new_issues_count=count,
                first_seen=first_seen,
                last_seen=last_seen,
                adopted=adopted,
                unadopted=unadopted,
            )
            by_release[release_id].append(row)
    for items in links.values():
        items.sort(key=lambda link: link.project_id)
    for environment_rows in by_release.values():
        # PostgreSQL's ``ORDER BY first_seen DESC, id DESC``: never seen first (NULLs come
        # first when descending), then newest first seen, then newest row.
        environment_rows.sort(
            key=lambda row: (row.first_seen is None, row.first_seen or NEVER, row.pk),
            reverse=True,
        )
    return links, by_release


def _pull_requests(organization_id: int, commits: Sequence[Commit]) -> dict[str, PullRequest]:
    """The pull requests merged as ``commits``, by merge commit SHA (one query)."""
    if not commits:
        return {}
    return {
        pr.merge_commit_sha: pr
        for pr in PullRequest.objects.filter(
            organization_id=organization_id, merge_commit_sha__in={c.key for c in commits}
        ).select_related("repository", "author")
        if pr.merge_commit_sha
    }


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


def _commit_releases(
    commits: list[Commit], projects: QuerySet[Project]
) -> dict[int, list[dict[str, Any]]]:
    """The releases of each commit that the caller may see: those linked to one of
    ``projects`` (one query)."""
    if not commits:
        return {}
    by_commit: dict[int, list[dict[str, Any]]] = defaultdict(list)
    visible = ReleaseProject.objects.filter(project_id__in=projects.values("pk"))
    links = (
        ReleaseCommit.objects.filter(
            commit_id__in={c.pk for c in commits},
            release_id__in=visible.values("release_id"),
        )
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
    pull_requests: dict[str, PullRequest],
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


def serialize_health(health: ReleaseHealth, stats_period: str | None) -> dict[str, Any]:
    """``healthData`` (docs/health.md §1): Sentry's keys, in Sentry's order."""
    return {
        "durationP50": health.duration_p50,
        "durationP90": health.duration_p90,
        "crashFreeUsers": health.crash_free_users,
        "crashFreeSessions": health.crash_free_sessions,
        "sessionsCrashed": health.sessions_crashed,
        "sessionsErrored": health.sessions_errored,
        "totalUsers": health.total_users,
        "totalUsers24h": health.total_users_24h,
        "totalProjectUsers24h": health.total_project_users_24h,
        "totalSessions": health.total_sessions,
        "totalSessions24h": health.total_sessions_24h,
        "totalProjectSessions24h": health.total_project_sessions_24h,
        "adoption": health.adoption,
        "sessionsAdoption": health.sessions_adoption,
        "stats": {stats_period: [list(point) for point in health.series]} if stats_period else {},
        "hasHealthData": health.has_data,
    }


def serialize_project_meta(meta: ProjectMeta | None) -> dict[str, Any]:
    if meta is None:
        return {}
    return {
        "nextReleaseVersion": meta.next_version,
        "prevReleaseVersion": meta.prev_version,
        "firstReleaseVersion": meta.first_version,
        "lastReleaseVersion": meta.last_version,
        "sessionsLowerBound": _hour(meta.sessions_lower_bound),
        "sessionsUpperBound": _hour(meta.sessions_upper_bound),
    }


def _hour(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


class ReleaseListSerializer(serializers.ListSerializer):
    """Computes the attrs of the whole page once and shares them through the context."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        entries = list(data)
        child = cast(ReleaseSerializer, self.child)
        context = cast(dict[str, Any], self.context)
        context["attrs"] = release_attrs(
            entries, child.output, viewer=child.viewer, projects=child.visible_projects
        )
        return [child.to_representation(entry) for entry in entries]


class ReleaseSerializer(serializers.Serializer):
    """Sentry's release object (docs/api.md §2), field for field, of a :class:`ReleaseEntry`.

    Context: ``request``, ``output`` (:class:`ReleaseOutput`) and ``projects`` (the projects
    the caller may see). A page's attrs come from
    :class:`ReleaseListSerializer`; a single release computes its own.
    """

    id = serializers.IntegerField(source="release.id")
    version = serializers.CharField(source="release.version")
    status = serializers.CharField(source="release.status_name")
    shortVersion = serializers.CharField(source="release.version")
    versionInfo = serializers.SerializerMethodField()
    ref = serializers.CharField(source="release.ref")
    url = serializers.CharField(source="release.url")
    dateReleased = serializers.DateTimeField(source="release.date_released")
    dateCreated = serializers.DateTimeField(source="release.date_added")
    # A field named like Serializer.data: the metaclass moves it into _declared_fields.
    data = serializers.JSONField(source="release.data")  # type: ignore[assignment]
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
    userAgent = serializers.CharField(source="release.user_agent")

    class Meta:
        list_serializer_class = ReleaseListSerializer

    @property
    def output(self) -> ReleaseOutput:
        return cast(ReleaseOutput, self.context.get("output") or ReleaseOutput())

    @property
    def viewer(self) -> Any:
        return getattr(self.context.get("request"), "user", None)

    @property
    def visible_projects(self) -> QuerySet[Project]:
        """Context ``projects``: what the caller may see. Required, so that a view that
        forgets it fails instead of showing every project."""
        return cast(QuerySet[Project], self.context["projects"])

    def _attrs(self, entry: ReleaseEntry) -> ReleaseAttrs:
        attrs: dict[tuple[int, int | None], ReleaseAttrs] = self.context["attrs"]
        return attrs[entry.key]

    def to_representation(self, instance: ReleaseEntry) -> dict[str, Any]:
        if not isinstance(self.parent, ReleaseListSerializer):
            context = cast(dict[str, Any], self.context)
            context["attrs"] = release_attrs(
                [instance], self.output, viewer=self.viewer, projects=self.visible_projects
            )
        data = super().to_representation(instance)
        if self.output.adoption_stages:
            stages = self._attrs(instance).adoption_stages
            data["adoptionStages"] = (
                {
                    slug: {
                        "stage": row.stage,
                        "adopted": iso(row.adopted),
                        "unadopted": iso(row.unadopted),
                    }
                    for slug, row in stages.items()
                }
                if stages is not None
                else None
            )
        return data

    def get_versionInfo(self, entry: ReleaseEntry) -> VersionInfo | None:
        return version_info(entry.release.version)

    def get_newGroups(self, entry: ReleaseEntry) -> int:
        return self._attrs(entry).new_groups

    def get_owner(self, entry: ReleaseEntry) -> dict[str, Any] | None:
        release = entry.release
        if release.owner_id is None or release.owner is None:
            return None
        return serialize_user(release.owner, self.viewer)

    def get_commitCount(self, entry: ReleaseEntry) -> int:
        return entry.release.commit_count or 0

    def get_lastCommit(self, entry: ReleaseEntry) -> dict[str, Any] | None:
        return self._attrs(entry).last_commit

    def get_deployCount(self, entry: ReleaseEntry) -> int:
        return entry.release.total_deploys or 0

    def get_lastDeploy(self, entry: ReleaseEntry) -> dict[str, Any] | None:
        release = entry.release
        if release.last_deploy_id is None or release.last_deploy is None:
            return None
        return serialize_deploy(release.last_deploy)

    def get_authors(self, entry: ReleaseEntry) -> list[dict[str, Any]]:
        return self._attrs(entry).authors

    def get_projects(self, entry: ReleaseEntry) -> list[dict[str, Any]]:
        stats_period = self.output.health.stats_period if self.output.health else None
        result = []
        for item in self._attrs(entry).projects:
            project = item.project
            data: dict[str, Any] = {
                "id": project.pk,
                "slug": project.slug,
                "name": project.name,
                "newGroups": item.new_groups,
                "platform": project.platform,
                "platforms": list(project.platforms or []),
                "hasHealthData": False,
            }
            if item.health is not None:
                data["hasHealthData"] = item.health.has_data
                data["healthData"] = serialize_health(item.health, stats_period)
            result.append(data)
        return result

    def get_firstEvent(self, entry: ReleaseEntry) -> str | None:
        return iso(self._attrs(entry).first_event)

    def get_lastEvent(self, entry: ReleaseEntry) -> str | None:
        return iso(self._attrs(entry).last_event)

    def get_currentProjectMeta(self, entry: ReleaseEntry) -> dict[str, Any]:
        return serialize_project_meta(self.output.current_project)


def serialize_commits(
    commits: Sequence[Commit], viewer: Any, projects: QuerySet[Project]
) -> list[dict[str, Any]]:
    """Sentry's commit objects, each with its ``releases`` (those linked to one of
    ``projects``, the caller's), for a page, in batch.

    Reads each commit's ``repository`` and ``author`` (select them with the commits).
    """
    if not commits:
        return []
    organization_id = commits[0].organization_id
    pull_requests = _pull_requests(organization_id, commits)
    resolver = AuthorResolver(
        organization_id,
        [c.author for c in commits if c.author]
        + [pr.author for pr in pull_requests.values() if pr.author],
        viewer,
    )
    commit_releases = _commit_releases(list(commits), projects)
    return [_serialize_commit(c, commit_releases, pull_requests, resolver) for c in commits]
